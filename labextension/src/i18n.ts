import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

let bundle: TranslationBundle = nullTranslator.load('jupyterlab_deploy');

/** Use the application's translator for every string from now on. */
export function setTranslator(translator: ITranslator): void {
  bundle = translator.load('jupyterlab_deploy');
}

/** A translated string; `%1`, `%2`... are replaced by `args`. */
export function __(text: string, ...args: (string | number)[]): string {
  return bundle.__(text, ...args);
}

/** A translated string with a singular and a plural form. */
export function _n(singular: string, plural: string, n: number, ...args: (string | number)[]): string {
  return bundle._n(singular, plural, n, ...args);
}
