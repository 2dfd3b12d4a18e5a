/** A translating function: `%1`, `%2`... in `text` are replaced by `args`. */
export type Trans = (text: string, ...args: (string | number)[]) => string;

/** The untranslated form, for pure logic and its tests. */
export const plain: Trans = (text, ...args) =>
  text.replace(/%(\d+)/g, (whole, n) => (args[Number(n) - 1] === undefined ? whole : String(args[Number(n) - 1])));
