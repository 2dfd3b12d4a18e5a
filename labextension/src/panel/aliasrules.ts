import { __ } from '../i18n';
import { aliasWarnings } from '../state';
import { AliasRules, WeightRow } from '../weights';
import { h, labelled, selectField, textField } from './dom';
import { DeployModel } from './model';

/** The shadow and sticky fields of the alias editor; `changed` runs on every edit. */
export function rulesForm(model: DeployModel, alias: string, rules: AliasRules, changed: () => void): HTMLElement {
  const id = (what: string) => `jp-deploy-${alias}-${what}`;
  const shadowNode = selectField({ name: 'shadow-node', id: id('shadow-node') },
    [['', __('no shadow')], ...model.nodes.map(n => [n.name, n.name] as [string, string])], rules.shadowNode,
    value => { rules.shadowNode = value; changed(); });
  const shadowPercent = textField({
    type: 'number', min: 0, max: 100, name: 'shadow-percent', id: id('shadow-percent'), value: rules.shadowPercent
  });
  shadowPercent.addEventListener('input', () => { rules.shadowPercent = shadowPercent.value; changed(); });
  const stickyKind = selectField({ name: 'sticky-kind', id: id('sticky-kind') },
    [['', __('not sticky')], ['header', __('by a header')], ['input', __('by an input')]], rules.stickyKind,
    value => { rules.stickyKind = value as AliasRules['stickyKind']; changed(); });
  const stickyName = textField({ name: 'sticky-name', id: id('sticky-name'), value: rules.stickyName, placeholder: 'x-user-id' });
  stickyName.addEventListener('input', () => { rules.stickyName = stickyName.value; changed(); });
  return h('fieldset', { className: 'jp-deploy-form jp-deploy-alias-rules' },
    h('legend', {}, __('Shadow and sticky traffic')),
    ...labelled(__('Shadow node (gets a copy; its answers are dropped)'), shadowNode),
    ...labelled(__('Shadow percent of requests'), shadowPercent),
    ...labelled(__('Sticky: one caller stays on one node'), stickyKind),
    ...labelled(__('Header or input name'), stickyName));
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
