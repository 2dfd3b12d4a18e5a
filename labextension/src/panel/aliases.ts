import { json, requestAPI } from '../api';
import { badgeClass } from '../statuses';
import { toRouting, validateWeights, WeightRow } from '../weights';
import { button, ErrorLine, h } from './dom';
import { DeployModel, AliasInfo } from './model';
import { confirm, showKey } from './nodes';

/** The aliases: routing as weight bars; an editor for weights and nodes, checked before saving. */
export class AliasesView {
  readonly node = h('div', { className: 'jp-deploy-aliases' });
  private error = new ErrorLine();
  private list = h('ul', { className: 'jp-deploy-list' });
  private editing = new Map<string, HTMLElement>();

  constructor(private model: DeployModel) {
    this.node.append(this.error.node, this.list, this.newAlias());
  }

  render(): void {
    this.list.replaceChildren(...this.model.aliases.map(a => this.row(a)));
    if (this.model.aliases.length === 0) {
      this.list.append(h('li', { className: 'jp-deploy-empty' }, 'No alias yet.'));
    }
  }

  private row(alias: AliasInfo): HTMLElement {
    const bars = h('div', { className: 'jp-deploy-bars' },
      ...alias.routing.map(r => h('div', {
        className: `jp-deploy-bar ${badgeClass(r.status)}`, style: `flex-grow: ${r.weight}`,
        title: `${r.node}: ${r.weight}%${r.status ? ' (' + r.status + ')' : ''}`
      }, r.weight > 0 ? `${r.node} ${r.weight}%` : '')));
    const editor = this.editing.get(alias.name);
    return h('li', { className: 'jp-deploy-alias', 'data-alias': alias.name },
      h('div', { className: 'jp-deploy-row' }, h('span', { className: 'jp-deploy-name' }, alias.name),
        alias.public && h('span', { className: 'jp-deploy-muted' }, 'public'),
        button('Edit', () => this.edit(alias), 'jp-deploy-edit'),
        button('Delete', () => void this.remove(alias.name), 'jp-mod-warn')),
      bars, editor);
  }

  private edit(alias: AliasInfo): void {
    if (this.editing.has(alias.name)) {
      this.editing.delete(alias.name);
    } else {
      this.editing.set(alias.name, this.editor(alias.name, alias.routing.map(r => ({ node: r.node, weight: r.weight }))));
    }
    this.render();
  }

  /** Rows of node + weight, add/remove, the validation message, Save. */
  private editor(name: string, initial: WeightRow[]): HTMLElement {
    const rows = initial.map(r => ({ ...r }));
    const table = h('div', { className: 'jp-deploy-weights' });
    const problems = h('div', { className: 'jp-deploy-error jp-deploy-validation' });
    const save = button('Save', () => void this.save(name, rows), 'jp-mod-accept jp-deploy-save');
    const check = () => {
      const errors = validateWeights(rows);
      problems.textContent = errors.join('; ');
      save.disabled = errors.length > 0;
    };
    const draw = () => {
      table.replaceChildren(...rows.map((row, i) => {
        const node = h('select', { className: 'jp-mod-styled', name: 'node', onchange: (e: Event) => {
          row.node = (e.target as HTMLSelectElement).value; check();
        } }, h('option', { value: '' }, '—'),
        ...this.model.nodes.map(n => h('option', { value: n.name, selected: n.name === row.node }, n.name)));
        const weight = h('input', { type: 'number', min: 0, max: 100, className: 'jp-mod-styled', name: 'weight',
          value: row.weight, oninput: (e: Event) => { row.weight = (e.target as HTMLInputElement).value; check(); } });
        return h('div', { className: 'jp-deploy-weight-row' }, node, weight,
          button('Remove', () => { rows.splice(i, 1); draw(); }));
      }));
      check();
    };
    draw();
    return h('div', { className: 'jp-deploy-editor' }, table,
      button('Add node', () => { rows.push({ node: '', weight: 0 }); draw(); }), save, problems);
  }

  private async save(name: string, rows: WeightRow[]): Promise<void> {
    this.error.clear();
    try {
      await requestAPI(`aliases/${name}`, json('PUT', { nodes: toRouting(rows) }));
      this.editing.delete(name);
      await this.model.refresh();
    } catch (e) {
      this.error.show(e);
    }
  }

  private async remove(name: string): Promise<void> {
    if (!(await confirm('Delete alias', `Delete alias ${name}? Its endpoint stops answering.`, 'Delete'))) {
      return;
    }
    this.error.clear();
    try {
      await requestAPI(`aliases/${name}`, { method: 'DELETE' });
      await this.model.refresh();
    } catch (e) {
      this.error.show(e);
    }
  }

  /** A new alias sending all its traffic to one node. */
  private newAlias(): HTMLElement {
    const name = h('input', { className: 'jp-mod-styled', placeholder: 'alias name', name: 'alias' });
    const node = h('input', { className: 'jp-mod-styled', placeholder: 'node', name: 'alias-node' });
    const create = async () => {
      this.error.clear();
      try {
        const made = await requestAPI<{ key: string | null }>(
          `aliases/${name.value.trim()}`, json('PUT', { nodes: { [node.value.trim()]: 100 } }));
        showKey(`alias ${name.value.trim()}`, made.key);
        await this.model.refresh();
      } catch (e) {
        this.error.show(e);
      }
    };
    return h('details', { className: 'jp-deploy-create' }, h('summary', {}, 'Add an alias'),
      h('div', { className: 'jp-deploy-form' }, name, node, button('Add', () => void create(), 'jp-mod-accept')));
  }
}
