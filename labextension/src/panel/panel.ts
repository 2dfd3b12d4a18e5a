import { Widget } from '@lumino/widgets';

import { deployIcon } from '../icons';
import { AliasesView } from './aliases';
import { ErrorLine, h } from './dom';
import { CheckpointInfo, DeployModel } from './model';
import { NodesView } from './nodes';

export interface PanelSettings {
  gatewayUrl: () => string;
  refresh: () => number;
  runtime: () => string;
}

/** The left-area panel: checkpoints, nodes and aliases, live. */
export class DeployPanel extends Widget {
  readonly model = new DeployModel();
  private error = new ErrorLine();
  private gateway = h('div', { className: 'jp-deploy-gateway' });
  private checkpoints = h('ul', { className: 'jp-deploy-list' });
  private nodes: NodesView;
  private aliases: AliasesView;

  constructor(private settings: PanelSettings) {
    super();
    this.id = 'jupyterlab-deploy-panel';
    this.title.icon = deployIcon;
    this.title.caption = 'Deploy';
    this.addClass('jp-deploy-panel');
    this.nodes = new NodesView(this.model, {
      refresh: settings.refresh, runtime: settings.runtime,
      gateway: () => ({ actual: this.model.gatewayUrl, shown: settings.gatewayUrl() })
    });
    this.aliases = new AliasesView(this.model);
    const section = (title: string, ...content: HTMLElement[]) =>
      h('section', { className: `jp-deploy-section jp-deploy-section-${title.toLowerCase()}` },
        h('h2', { className: 'jp-deploy-heading' }, title), ...content);
    this.node.append(
      h('header', { className: 'jp-deploy-title' }, h('h1', {}, 'Deploy'), this.gateway),
      this.error.node,
      section('Nodes', this.nodes.node),
      section('Aliases', this.aliases.node),
      section('Checkpoints', this.checkpoints));
    this.model.changed.connect(() => this.render());
    void this.model.start();
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  render(): void {
    this.error.show(this.model.error);
    const url = this.settings.gatewayUrl() || this.model.gatewayUrl;
    this.gateway.textContent = url ? `Gateway: ${url}` : '';
    this.nodes.render();
    this.aliases.render();
    this.renderCheckpoints();
  }

  private renderCheckpoints(): void {
    const byName = new Map<string, CheckpointInfo[]>();
    for (const c of this.model.checkpoints) {
      byName.set(c.name, [...(byName.get(c.name) ?? []), c]);
    }
    const fields = (list?: { name: string; type?: string }[]) =>
      (list ?? []).map(f => (f.type ? `${f.name}: ${String(f.type)}` : f.name)).join(', ') || '—';
    this.checkpoints.replaceChildren(...[...byName].map(([name, versions]) => {
      const latest = versions.reduce((a, b) => (b.version > a.version ? b : a));
      return h('li', { className: 'jp-deploy-checkpoint', 'data-checkpoint': name },
        h('div', { className: 'jp-deploy-row' }, h('span', { className: 'jp-deploy-name' }, name),
          h('span', { className: 'jp-deploy-muted' }, `versions ${versions.map(v => v.version).join(', ')}`)),
        h('div', { className: 'jp-deploy-meta' }, `in: ${fields(latest.inputs)}`),
        h('div', { className: 'jp-deploy-meta' }, `out: ${fields(latest.outputs)}`));
    }));
    if (byName.size === 0) {
      this.checkpoints.append(h('li', { className: 'jp-deploy-empty' }, 'No checkpoint yet.'));
    }
  }
}
