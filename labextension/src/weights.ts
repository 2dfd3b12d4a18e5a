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

/** The weights scaled to sum to 100 (whole numbers, the remainder to the heaviest rows). */
export function balance(rows: WeightRow[]): WeightRow[] {
  const weights = rows.map(r => Math.max(Number(r.weight) || 0, 0));
  const total = weights.reduce((a, b) => a + b, 0);
  if (rows.length === 0) {
    return [];
  }
  const exact = weights.map(w => (total > 0 ? (w * 100) / total : 100 / rows.length));
  const whole = exact.map(Math.floor);
  let left = 100 - whole.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - whole[i], i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left <= 0) {
      break;
    }
    whole[i] += 1;
    left -= 1;
  }
  return rows.map((r, i) => ({ ...r, weight: whole[i] }));
}

/** All the traffic to one node; the others stay listed at 0. */
export function promote(rows: WeightRow[], node: string): WeightRow[] {
  return rows.map(r => ({ ...r, weight: r.node === node ? 100 : 0 }));
}
