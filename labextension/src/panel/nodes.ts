import { Dialog, showDialog } from '@jupyterlab/apputils';
import { ellipsesIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Menu, Widget } from '@lumino/widgets';

import { json, requestAPI } from '../api';
import { __ } from '../i18n';
import { nodeReason, readiness, validateRange } from '../state';
import { badge, ErrorLine, guarded, h, iconButton, labelled, textField } from './dom';
import { DeployModel, NodeInfo } from './model';
import { rates, Sparkline } from './sparkline';

/** Ask before something that cannot be undone. */
export async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title, body,
    buttons: [Dialog.cancelButton({ label: __('Cancel') }), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

/** A DOM node as the body of a JupyterLab dialog. */
export class WidgetOf<T = void> extends Widget {
  constructor(node: HTMLElement, private value: () => T = () => undefined as T) {
    super({ node });
  }

  getValue(): T {
    return this.value();
  }
}

/** The nodes, one line each: status, name, version, readiness, traffic, reason, a ⋯ menu. */
export class NodesView {
  readonly node = h('ul', { className: 'jp-deploy-list jp-deploy-nodes' });
  private errors = new Map<string, ErrorLine>();
  private sparklines = new Map<string, Sparkline>();
  /** Each node's latest request rate (req/s), for the aliases' traffic per target. */
  readonly rates = new Map<string, number>();
  private commands = new CommandRegistry();
  private menu = new Menu({ commands: this.commands });

  constructor(
    private model: DeployModel,
    private open: (node: string, tab?: string) => void,
    writeMagic: (node: string) => void = () => undefined
  ) {
    this.menu.addClass('jp-deploy-node-menu');
    const node = (args: any) => this.model.nodes.find(n => n.name === args.node);
    this.commands.addCommand('scale', {
      label: __('Scale…'), execute: args => void this.scale(node(args)!)
    });
    this.commands.addCommand('suspend', {
      label: args => (node(args)?.suspended ? __('Resume') : __('Suspend')),
      execute: args => void this.act(String(args.node), node(args)?.suspended ? 'resume' : 'suspend')
    });
    this.commands.addCommand('update', {
      label: __('Settings…'), execute: args => this.open(String(args.node), __('Overview'))
    });
    this.commands.addCommand('write-magic', {
      label: __('Write a %deploy cell'), execute: args => writeMagic(String(args.node))
    });
    this.commands.addCommand('delete', {
      label: __('Delete'), className: 'jp-deploy-menu-delete', execute: args => void this.remove(String(args.node))
    });
  }

  render(): void {
    const names = new Set(this.model.nodes.map(n => n.name));
    for (const name of [...this.sparklines.keys()].filter(n => !names.has(n))) {
      this.sparklines.delete(name);
      this.errors.delete(name);
    }
    this.node.replaceChildren(...this.model.nodes.map(n => this.row(n)));
    if (this.model.nodes.length === 0) {
      this.node.append(h('li', { className: 'jp-deploy-empty' }, __('No node yet: deploy a cell.')));
    }
  }

  /** The rate each node served lately, from the service's history. */
  async sample(): Promise<void> {
    await Promise.all(this.model.nodes.map(async node => {
      try {
        const history = await requestAPI<{ samples: { time: number; requests: number; duration_sum: number }[] }>(
          `nodes/${node.name}/history?range=300`);
        const rate = rates(history.samples).rate;
        this.sparkline(node.name).update(rate);
        this.rates.set(node.name, rate[rate.length - 1] ?? 0);
      } catch {
        // the row's status says more than a missing sparkline
      }
    }));
  }

  private sparkline(name: string): Sparkline {
    let line = this.sparklines.get(name);
    if (!line) {
      line = new Sparkline(__('requests'), __('req/s'));
      this.sparklines.set(name, line);
    }
    return line;
  }

  private errorOf(name: string): ErrorLine {
    let error = this.errors.get(name);
    if (!error) {
      error = new ErrorLine();
      this.errors.set(name, error);
    }
    return error;
  }

  private row(node: NodeInfo): HTMLElement {
    const version = this.model.checkpoints.find(c => c.id === node.checkpoint_id);
    const what = node.image || (version ? `${version.name}@${version.version}` : node.checkpoint);
    const reason = nodeReason(node, this.model.eventsOf(node.name), __);
    const more = iconButton(ellipsesIcon, __('Actions of %1', node.name), () => {
      this.menu.clearItems();
      for (const command of ['scale', 'suspend', 'update', 'write-magic', 'delete']) {
        this.menu.addItem({ command, args: { node: node.name } });
      }
      const box = more.getBoundingClientRect();
      this.menu.open(box.left, box.bottom);
    }, 'jp-deploy-more');
    return h('li', { className: 'jp-deploy-node', 'data-node': node.name, 'data-status': node.status },
      h('div', { className: 'jp-deploy-row' }, badge(node.status, __('node status')),
        h('button', {
          className: 'jp-deploy-name jp-deploy-link', type: 'button', onclick: () => this.open(node.name),
          title: __('Open node %1', node.name)
        }, node.name),
        node.suspended && h('span', { className: 'jp-deploy-muted' }, __('suspended')),
        h('span', { className: 'jp-deploy-spacer' }), more),
      h('div', { className: 'jp-deploy-row jp-deploy-meta' },
        h('span', { className: 'jp-deploy-version' }, what), '·',
        h('span', { className: 'jp-deploy-readiness' }, readiness(node, __))),
      this.sparkline(node.name).node,
      reason && h('div', { className: `jp-deploy-reason ${node.status === 'Healthy' ? '' : 'jp-deploy-reason-bad'}` }, reason),
      this.errorOf(node.name).node);
  }

  private async run(name: string, action: () => Promise<unknown>): Promise<void> {
    if (await guarded(this.errorOf(name), action)) {
      await this.model.refresh();
    }
  }

  private act(name: string, action: 'suspend' | 'resume'): Promise<void> {
    return this.run(name, () => requestAPI(`nodes/${name}:${action}`, { method: 'POST' }));
  }

  private async remove(name: string): Promise<void> {
    if (await confirm(__('Delete node'), __('Delete node %1? Its instances drain, then stop.', name), __('Delete'))) {
      await this.run(name, () => requestAPI(`nodes/${name}`, { method: 'DELETE' }));
    }
  }

  /** The Scale dialog: refuses min > max before anything is sent. */
  private async scale(node: NodeInfo): Promise<void> {
    const min = textField({ type: 'number', min: 0, value: node.min, name: 'min', id: 'jp-deploy-scale-min' });
    const max = textField({ type: 'number', min: 1, value: node.max, name: 'max', id: 'jp-deploy-scale-max' });
    const problems = h('div', { className: 'jp-deploy-error jp-deploy-validation', role: 'status' });
    const body = h('div', { className: 'jp-deploy-form' },
      ...labelled(__('Minimum'), min), ...labelled(__('Maximum'), max), problems);
    const dialog = new Dialog({
      title: __('Scale %1', node.name), body: new WidgetOf(body),
      buttons: [Dialog.cancelButton({ label: __('Cancel') }), Dialog.okButton({ label: __('Scale') })]
    });
    const check = () => {
      const errors = validateRange(min.value, max.value, __);
      problems.textContent = errors.join('; ');
      const ok = dialog.node.querySelector<HTMLButtonElement>('.jp-mod-accept');
      if (ok) {
        ok.disabled = errors.length > 0;
      }
    };
    min.addEventListener('input', check);
    max.addEventListener('input', check);
    const result = await dialog.launch();
    if (result.button.accept && validateRange(min.value, max.value).length === 0) {
      await this.run(node.name, () => requestAPI(`nodes/${node.name}`, json('PATCH', { min: Number(min.value), max: Number(max.value) })));
    }
  }
}
