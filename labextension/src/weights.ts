/** One row of an alias being edited. */
export interface WeightRow {
  node: string;
  weight: number | string;
}

/** What is wrong with an alias's routing, in words; an empty list when it can be saved. */
export function validateWeights(rows: WeightRow[]): string[] {
  const errors: string[] = [];
  if (rows.length === 0) {
    errors.push('an alias needs at least one node');
    return errors;
  }
  const seen = new Set<string>();
  let total = 0;
  for (const row of rows) {
    if (!row.node) {
      errors.push('choose a node for each row');
    } else if (seen.has(row.node)) {
      errors.push(`node ${row.node} is listed twice`);
    }
    seen.add(row.node);
    const weight = Number(row.weight);
    if (String(row.weight).trim() === '' || !Number.isInteger(weight) || weight < 0 || weight > 100) {
      errors.push(`the weight of ${row.node || 'a node'} must be a whole number from 0 to 100`);
    } else {
      total += weight;
    }
  }
  if (errors.length === 0 && total !== 100) {
    errors.push(`the weights sum to ${total}, not 100`);
  }
  return errors;
}

/** The routing as the API takes it: {"node": weight}. */
export function toRouting(rows: WeightRow[]): Record<string, number> {
  return Object.fromEntries(rows.map(row => [row.node, Number(row.weight)]));
}
