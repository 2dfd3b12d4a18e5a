import { __ } from '../i18n';
import { aliasWarnings } from '../state';
import { AliasRules, WeightRow } from '../weights';
import { h } from './dom';
import { DeployModel } from './model';

/** The shadow and sticky fields of the alias editor; `changed` runs on every edit. */
export function rulesForm(model: DeployModel, alias: string, rules: AliasRules, changed: () => void): HTMLElement {
  const id = (what: string) => `jp-deploy-${alias}-${what}`;
  const shadowNode = h('select', {
    className: 'jp-mod-styled', name: 'shadow-node', id: id('shadow-node'),
    onchange: (e: Event) => { rules.shadowNode = (e.target as HTMLSelectElement).value; changed(); }
  }, h('option', { value: '' }, __('no shadow')),
  ...model.nodes.map(n => h('option', { value: n.name, selected: n.name === rules.shadowNode }, n.name)));
  const shadowPercent = h('input', {
    type: 'number', min: 0, max: 100, step: 'any', className: 'jp-mod-styled', name: 'shadow-percent',
    id: id('shadow-percent'), value: rules.shadowPercent,
    oninput: (e: Event) => { rules.shadowPercent = (e.target as HTMLInputElement).value; changed(); }
  });
  const stickyKind = h('select', {
    className: 'jp-mod-styled', name: 'sticky-kind', id: id('sticky-kind'),
    onchange: (e: Event) => { rules.stickyKind = (e.target as HTMLSelectElement).value as AliasRules['stickyKind']; changed(); }
  }, ...([['', __('not sticky')], ['header', __('by a header')], ['input', __('by an input')]] as const)
    .map(([value, label]) => h('option', { value, selected: value === rules.stickyKind }, label)));
  const stickyName = h('input', {
    className: 'jp-mod-styled', name: 'sticky-name', id: id('sticky-name'), value: rules.stickyName,
    placeholder: 'x-user-id',
    oninput: (e: Event) => { rules.stickyName = (e.target as HTMLInputElement).value; changed(); }
  });
  return h('fieldset', { className: 'jp-deploy-form jp-deploy-alias-rules' },
    h('legend', {}, __('Shadow and sticky traffic')),
    h('label', { for: shadowNode.id }, __('Shadow node (gets a copy; its answers are dropped)')), shadowNode,
    h('label', { for: shadowPercent.id }, __('Shadow percent of requests')), shadowPercent,
    h('label', { for: stickyKind.id }, __('Sticky: one caller stays on one node')), stickyKind,
    h('label', { for: stickyName.id }, __('Header or input name')), stickyName);
}

/** Warnings for rows being edited that would send traffic to a node that is not Healthy. */
export function editorWarnings(model: DeployModel, rows: WeightRow[]): string[] {
  return aliasWarnings(rows.filter(r => r.node).map(r => ({
    node: r.node, weight: Number(r.weight) || 0, status: model.nodes.find(n => n.name === r.node)?.status ?? null
  })), __);
}

/** The alias's rules as one line: "shadow b 5% · sticky by header x-user". */
export function rulesLine(rules: AliasRules): string {
  const parts: string[] = [];
  if (rules.shadowNode) {
    parts.push(__('shadow %1 %2%', rules.shadowNode, rules.shadowPercent));
  }
  if (rules.stickyKind) {
    parts.push(__('sticky by %1 %2', rules.stickyKind, rules.stickyName));
  }
  return parts.join(' · ');
}
