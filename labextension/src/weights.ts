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

/** An alias's shadow and sticky settings as the editor holds them. */
export interface AliasRules {
  shadowNode: string;
  shadowPercent: number | string;
  stickyKind: '' | 'header' | 'input';
  stickyName: string;
}

/** The rules of an alias as the API gives them ({"node", "percent"}, {"header": NAME}). */
export function rulesOf(alias: { shadow?: { node: string; percent: number } | null;
  sticky?: Record<string, string> | null }): AliasRules {
  const [kind, name] = Object.entries(alias.sticky ?? {})[0] ?? ['', ''];
  return {
    shadowNode: alias.shadow?.node ?? '', shadowPercent: alias.shadow?.percent ?? 10,
    stickyKind: kind === 'header' || kind === 'input' ? kind : '', stickyName: name
  };
}

/** What is wrong with the shadow and sticky settings, given the routing being edited. */
export function validateRules(rules: AliasRules, rows: WeightRow[]): string[] {
  const errors: string[] = [];
  if (rules.shadowNode) {
    const percent = Number(rules.shadowPercent);
    if (String(rules.shadowPercent).trim() === '' || !(percent >= 0 && percent <= 100)) {
      errors.push('the shadow percent must be a number from 0 to 100');
    }
    if (rows.some(r => r.node === rules.shadowNode && Number(r.weight) > 0)) {
      errors.push(`the shadow node ${rules.shadowNode} takes traffic already: give it a weight of 0 or pick another`);
    }
  }
  if (rules.stickyKind && !rules.stickyName.trim()) {
    errors.push(`name the ${rules.stickyKind} that keeps a caller on one node`);
  }
  return errors;
}

/** The rules as the API takes them: null turns each off. */
export function rulesBody(rules: AliasRules): { shadow: { node: string; percent: number } | null;
  sticky: Record<string, string> | null } {
  return {
    shadow: rules.shadowNode ? { node: rules.shadowNode, percent: Number(rules.shadowPercent) } : null,
    sticky: rules.stickyKind ? { [rules.stickyKind]: rules.stickyName.trim() } : null
  };
}
