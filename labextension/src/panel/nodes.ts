import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { json, requestAPI } from '../api';
import { NodeDetail } from './detail';
import { badge, button, ErrorLine, h } from './dom';
import { DeployModel, NodeInfo } from './model';

/** Ask before something that cannot be undone. */
export async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title, body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

/** A key is shown once, when its node or alias is made: say so where it can be copied. */
export function showKey(what: string, key: string | null | undefined): void {
  if (key) {
    void showDialog({
      title: `The key of ${what}`,
      body: new WidgetOf(h('div', { className: 'jp-deploy-form' },
        h('span', {}, 'Callers send it as Authorization: Bearer KEY. It is not shown again.'),
        h('input', { className: 'jp-mod-styled jp-deploy-key', readonly: true, value: key }))),
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
  }
}

/** The nodes: status and instance badges, actions, and each node's detail when opened. */
export class NodesView {
  readonly node = h('div', { className: 'jp-deploy-nodes' });
  private error = new ErrorLine();
  private list = h('ul', { className: 'jp-deploy-list' });
  private details = new Map<string, NodeDetail>();

  constructor(
    private model: DeployModel,
    private settings: {
      refresh: () => number;
      runtime: () => string;
      gateway: () => { actual: string; shown: string };
    }
  ) {
    this.node.append(this.error.node, this.list, this.createForm());
  }

  render(): void {
    const names = new Set(this.model.nodes.map(n => n.name));
    for (const [name, detail] of this.details) {
      if (!names.has(name)) {
        detail.dispose();
        this.details.delete(name);
      }
    }
    this.list.replaceChildren(...this.model.nodes.map(n => this.row(n)));
    if (this.model.nodes.length === 0) {
      this.list.append(h('li', { className: 'jp-deploy-empty' }, 'No node yet: deploy a cell.'));
    }
  }

  private row(node: NodeInfo): HTMLElement {
    const detail = this.details.get(node.name);
    const toggle = () => {
      if (detail) {
        detail.dispose();
        this.details.delete(node.name);
      } else {
        this.details.set(node.name, new NodeDetail(node.name, this.settings.refresh, this.settings.gateway));
      }
      this.render();
    };
    return h('li', { className: 'jp-deploy-node', 'data-node': node.name },
      h('div', { className: 'jp-deploy-row' },
        h('button', { className: 'jp-deploy-name jp-deploy-link', onclick: toggle, title: 'Show logs, metrics and the test request' }, node.name),
        badge(node.status, 'node status'),
        node.suspended && h('span', { className: 'jp-deploy-muted' }, 'suspended')),
      h('div', { className: 'jp-deploy-meta' },
        `${node.checkpoint || node.image} · ${node.runtime} · ${node.min}..${node.max}`),
      h('div', { className: 'jp-deploy-instances' },
        h('span', { className: 'jp-deploy-label' }, 'instances'),
        ...node.instances.map(i => badge(i.status, `${i.id}${i.message ? ': ' + i.message : ''}`))),
      h('div', { className: 'jp-deploy-actions' },
        button('Scale', () => void this.scale(node)),
        node.suspended
          ? button('Resume', () => void this.act(node.name, 'resume'))
          : button('Suspend', () => void this.act(node.name, 'suspend')),
        button('Delete', () => void this.remove(node.name), 'jp-mod-warn jp-deploy-delete')),
      detail?.node);
  }

  private async run(action: () => Promise<unknown>): Promise<void> {
    this.error.clear();
    try {
      await action();
      await this.model.refresh();
    } catch (e) {
      this.error.show(e);
    }
  }

  private act(name: string, action: 'suspend' | 'resume'): Promise<void> {
    return this.run(() => requestAPI(`nodes/${name}:${action}`, { method: 'POST' }));
  }

  private async remove(name: string): Promise<void> {
    if (await confirm('Delete node', `Delete node ${name}? Its instances drain, then stop.`, 'Delete')) {
      await this.run(() => requestAPI(`nodes/${name}`, { method: 'DELETE' }));
    }
  }

  private async scale(node: NodeInfo): Promise<void> {
    const min = h('input', { type: 'number', min: 0, value: node.min, className: 'jp-mod-styled', name: 'min' });
    const max = h('input', { type: 'number', min: 1, value: node.max, className: 'jp-mod-styled', name: 'max' });
    const body = h('div', { className: 'jp-deploy-form' }, h('label', {}, 'Minimum', min), h('label', {}, 'Maximum', max));
    const result = await showDialog({
      title: `Scale ${node.name}`, body: new WidgetOf(body),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Scale' })]
    });
    if (result.button.accept) {
      await this.run(() => requestAPI(`nodes/${node.name}`, json('PATCH', { min: Number(min.value), max: Number(max.value) })));
    }
  }

  /** Create a node from a pinned checkpoint. */
  private createForm(): HTMLElement {
    const name = h('input', { className: 'jp-mod-styled', placeholder: 'node name', name: 'node' });
    const checkpoint = h('input', { className: 'jp-mod-styled', placeholder: 'checkpoint (name or name@version)', name: 'checkpoint' });
    const create = () => this.run(async () => {
      const created = await requestAPI<{ key: string }>('nodes', json('POST', {
        name: name.value.trim(), checkpoint: checkpoint.value.trim(), runtime: this.settings.runtime()
      }));
      showKey(`node ${name.value.trim()}`, created.key);
    });
    return h('details', { className: 'jp-deploy-create' }, h('summary', {}, 'Create a node'),
      h('div', { className: 'jp-deploy-form' }, name, checkpoint, button('Create', () => void create(), 'jp-mod-accept')));
  }
}

/** A DOM node as the body of a JupyterLab dialog. */
export class WidgetOf extends Widget {
  constructor(node: HTMLElement) {
    super({ node });
  }
}
