import { Dialog, showDialog } from '@jupyterlab/apputils';
import { deleteIcon, editIcon } from '@jupyterlab/ui-components';

import { json, requestAPI } from '../api';
import { __ } from '../i18n';
import { aliasWarnings } from '../state';
import { badgeClass } from '../statuses';
import { AliasRules, balance, promote, rulesBody, rulesOf, toRouting, validateRules, validateWeights, WeightRow } from '../weights';
import { editorWarnings, rulesForm, rulesLine } from './aliasrules';
import { button, choosing, copyButton, ErrorLine, guarded, h, iconButton, labelled, option, selectField, setEnabled, textField, ToolkitField } from './dom';
import { AliasInfo, DeployModel } from './model';
import { confirm, WidgetOf } from './nodes';

/** A key is shown once, when its node or alias is made: with Copy, never in a cell output. */
export function showKey(what: string, key: string | null | undefined): void {
  if (key) {
    const input = h('input', { className: 'jp-mod-styled jp-deploy-key', readonly: true, value: key, 'aria-label': __('Key') });
    void showDialog({
      title: __('The key of %1', what),
      body: new WidgetOf(h('div', { className: 'jp-deploy-form' },
        h('span', {}, __('Callers send it as Authorization: Bearer KEY. It is not shown again.')),
        h('div', { className: 'jp-deploy-row' }, input, copyButton(() => key, __('key'))))),
      buttons: [Dialog.okButton({ label: __('Close') })]
    });
  }
}

/** The aliases: endpoint, routing with full labels and warnings, an editor, and a new alias. */
export class AliasesView {
  readonly node = h('div', { className: 'jp-deploy-aliases' });
  private error = new ErrorLine();
  private list = h('ul', { className: 'jp-deploy-list' });
  private editing = new Map<string, HTMLElement>();
  private errors = new Map<string, ErrorLine>();
  private shownState = '';

  constructor(
    private model: DeployModel,
    private shown: (url: string) => string,
    private rate: (node: string) => number | undefined = () => undefined
  ) {
    this.node.append(this.list, this.newAlias());
  }

  render(): void {
    if (choosing(this.node)) {
      return; // the next refresh draws what changed
    }
    // Drawn again only when what it shows changed: redrawing moves an open editor out of the
    // page and back, and a click landing meanwhile would be lost.
    const shown = JSON.stringify([this.model.aliases, this.model.nodes.map(n => [n.name, n.status]),
      [...this.editing.keys()], this.model.aliases.map(a => a.routing.map(r => this.rate(r.node)?.toFixed(1)))]);
    if (shown !== this.shownState) {
      this.shownState = shown;
      this.draw();
    }
  }

  private draw(): void {
    this.list.replaceChildren(...this.model.aliases.map(a => this.row(a)));
    if (this.model.aliases.length === 0) {
      this.list.append(h('li', { className: 'jp-deploy-empty' }, __('No alias yet.')));
    }
    this.node.querySelectorAll<ToolkitField>('jp-select[name=alias-node]').forEach(s => this.fillNodes(s));
  }

  private errorOf(name: string): ErrorLine {
    const error = this.errors.get(name) ?? new ErrorLine();
    this.errors.set(name, error);
    return error;
  }

  private row(alias: AliasInfo): HTMLElement {
    const endpoint = this.shown(alias.endpoint);
    const bars = h('div', { className: 'jp-deploy-bars', 'aria-hidden': 'true' },
      ...alias.routing.map(r => h('div', {
        className: `jp-deploy-bar ${badgeClass(r.status)}`, style: `flex-grow: ${r.weight}`,
        title: `${r.node}: ${r.weight}%${r.status ? ' (' + r.status + ')' : ''}`
      })));
    const legend = h('ul', { className: 'jp-deploy-bar-legend' },
      ...alias.routing.map(r => h('li', { 'data-node': r.node },
        h('span', { className: `jp-deploy-dot ${badgeClass(r.status)}` }),
        `${r.node} ${r.weight}%`, h('span', { className: 'jp-deploy-muted' }, ` · ${r.status ? __(r.status) : __('missing')}` +
          (this.rate(r.node) === undefined ? '' : ` · ${__('%1 req/s', this.rate(r.node)!.toFixed(1))}`)))));
    const warnings = aliasWarnings(alias.routing, __);
    const rules = rulesLine(rulesOf(alias));
    return h('li', { className: 'jp-deploy-alias', 'data-alias': alias.name },
      h('div', { className: 'jp-deploy-row' }, h('span', { className: 'jp-deploy-name' }, alias.name),
        alias.public && h('span', { className: 'jp-deploy-muted' }, __('public')),
        h('span', { className: 'jp-deploy-spacer' }),
        iconButton(editIcon, __('Edit alias %1', alias.name), () => this.edit(alias), 'jp-deploy-edit'),
        iconButton(deleteIcon, __('Delete alias %1', alias.name), () => void this.remove(alias.name), 'jp-deploy-delete')),
      h('div', { className: 'jp-deploy-row jp-deploy-meta' },
        h('a', { href: endpoint, target: '_blank', rel: 'noopener', className: 'jp-deploy-endpoint' }, endpoint),
        copyButton(() => endpoint, __('endpoint of %1', alias.name))),
      bars, legend,
      rules && h('div', { className: 'jp-deploy-meta jp-deploy-alias-rules-line' }, rules),
      ...warnings.map(w => h('div', { className: 'jp-deploy-warning', role: 'note' }, `⚠ ${w}`)),
      this.errorOf(alias.name).node, this.editing.get(alias.name));
  }

  private edit(alias: AliasInfo): void {
    if (this.editing.has(alias.name)) {
      this.editing.delete(alias.name);
    } else {
      this.editing.set(alias.name, this.editor(alias.name, alias.routing.map(r => ({ node: r.node, weight: r.weight })),
        rulesOf(alias)));
    }
    this.render();
  }

  /** Rows of node (a list), weight, status and share; balance, promote, shadow and sticky,
   * the checks and warnings as they are typed, Save. */
  private editor(name: string, initial: WeightRow[], rules: AliasRules): HTMLElement {
    let rows = initial.map(r => ({ ...r }));
    const table = h('div', { className: 'jp-deploy-weights' });
    const problems = h('div', { className: 'jp-deploy-error jp-deploy-validation', role: 'status' });
    const warnings = h('div', { className: 'jp-deploy-editor-warnings', role: 'status' });
    const save = button(__('Save'), () => void this.save(name, rows, rules), 'jp-mod-accept jp-deploy-save');
    const check = () => {
      const errors = [...validateWeights(rows), ...validateRules(rules, rows)];
      problems.textContent = errors.join('; ');
      setEnabled(save, errors.length === 0);
      warnings.replaceChildren(...editorWarnings(this.model, rows).map(w =>
        h('div', { className: 'jp-deploy-warning', role: 'note' }, `⚠ ${w}`)));
    };
    const draw = () => {
      table.replaceChildren(...rows.map((row, i) => {
        const node = selectField({ name: 'node', 'aria-label': __('Node of row %1', i + 1) },
          [['', '—'], ...this.model.nodes.map(n => [n.name, n.name] as [string, string])], row.node,
          value => { row.node = value; draw(); });
        const weight = textField({ type: 'number', min: 0, max: 100, name: 'weight',
          'aria-label': __('Weight of %1', row.node || __('row %1', i + 1)), value: row.weight });
        weight.addEventListener('input', () => { row.weight = weight.value; check(); });
        const status = this.model.nodes.find(n => n.name === row.node)?.status ?? '';
        return h('div', { className: 'jp-deploy-weight-row' }, node, weight,
          h('span', { className: 'jp-deploy-muted' }, status ? __(status) : ''),
          button(__('100 %'), () => { rows = promote(rows, row.node); draw(); }, 'jp-deploy-promote'),
          button(__('Remove'), () => { rows.splice(i, 1); draw(); }));
      }));
      check();
    };
    draw();
    return h('div', { className: 'jp-deploy-editor' }, table,
      h('div', { className: 'jp-deploy-row' },
        button(__('Add node'), () => { rows.push({ node: '', weight: 0 }); draw(); }),
        button(__('Balance to 100'), () => { rows = balance(rows); draw(); }, 'jp-deploy-balance')),
      warnings, rulesForm(this.model, name, rules, check), h('div', { className: 'jp-deploy-row' }, save), problems);
  }

  private async save(name: string, rows: WeightRow[], rules: AliasRules): Promise<void> {
    const body = { nodes: toRouting(rows), ...rulesBody(rules) };
    if (await guarded(this.errorOf(name), () => requestAPI(`aliases/${name}`, json('PUT', body)))) {
      this.editing.delete(name);
      await this.model.refresh();
    }
  }

  private async remove(name: string): Promise<void> {
    if (await confirm(__('Delete alias'), __('Delete alias %1? Its endpoint stops answering.', name), __('Delete'))) {
      if (await guarded(this.errorOf(name), () => requestAPI(`aliases/${name}`, { method: 'DELETE' }))) {
        await this.model.refresh();
      }
    }
  }

  private fillNodes(select: ToolkitField): void {
    const chosen = select.value;
    select.replaceChildren(option('', __('choose a node')),
      ...this.model.nodes.map(n => option(n.name, `${n.name} (${__(n.status)})`)));
    select.setAttribute('value', chosen);
  }

  /** A new alias sending all its traffic to one node, picked from the list. */
  private newAlias(): HTMLElement {
    const name = textField({ name: 'alias', id: 'jp-deploy-new-alias' });
    const node = selectField({ name: 'alias-node', id: 'jp-deploy-new-alias-node' }, [], '');
    const create = () => guarded(this.error, async () => {
      if (!node.value) {
        throw new Error(__('choose the node the alias sends its traffic to'));
      }
      const made = await requestAPI<{ key: string | null }>(
        `aliases/${name.value.trim()}`, json('PUT', { nodes: { [node.value]: 100 } }));
      showKey(__('alias %1', name.value.trim()), made.key);
      await this.model.refresh();
    });
    return h('details', { className: 'jp-deploy-create' }, h('summary', {}, __('Add an alias')),
      h('div', { className: 'jp-deploy-form' },
        ...labelled(__('Alias name'), name), ...labelled(__('Node'), node),
        button(__('Add'), () => void create(), 'jp-mod-accept jp-deploy-add-alias'), this.error.node));
  }
}
