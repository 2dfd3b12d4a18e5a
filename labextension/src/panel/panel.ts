import { Notification } from '@jupyterlab/apputils';
import { addIcon, refreshIcon, settingsIcon, Toolbar, ToolbarButton } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { __ } from '../i18n';
import { deployIcon } from '../icons';
import { AliasesView, showKey } from './aliases';
import { createNode } from './create';
import { button, ErrorLine, h } from './dom';
import { CheckpointInfo, DeployModel } from './model';
import { NodesView } from './nodes';
import { AuditView, gate, MembersView, needs, ProjectPicker } from './project';
import { allows, serviceDown } from '../projects';

export interface PanelSettings {
  gatewayUrl: () => string;
  refresh: () => number;
  runtime: () => string;
  /** Open a node's view in the main area, on a tab. */
  open: (node: string, tab?: string) => void;
  /** Open a checkpoint version (NAME@VERSION) in the main area. */
  openCheckpoint: (ref: string) => void;
  /** Write a node's `%deploy` record into the active notebook. */
  writeMagic: (node: string) => void;
  openSettings: () => void;
  /** Another project is shown: what was opened from the last one closes. */
  projectChanged?: (project: string) => void;
}

/** The left-area panel: a toolbar, a summary, then nodes, aliases and checkpoints, live. */
export class DeployPanel extends Panel {
  readonly model = new DeployModel();
  readonly toolbar = new Toolbar();
  private body = new Widget({ node: h('div', { className: 'jp-deploy-panel-body' }) });
  private error = new ErrorLine();
  private summary = h('div', { className: 'jp-deploy-summary', role: 'status' });
  private down = h('div', { className: 'jp-deploy-service-down', role: 'alert' });
  private sections = new Map<string, HTMLDetailsElement>();
  private checkpoints = h('ul', { className: 'jp-deploy-list' });
  private nodes: NodesView;
  private aliases: AliasesView;
  private picker: ProjectPicker;
  private creators: ToolbarButton[];
  private members: MembersView;
  private auditView: AuditView;
  private timer: number;

  constructor(private settings: PanelSettings) {
    super();
    this.id = 'jupyterlab-deploy-panel';
    this.title.icon = deployIcon;
    this.title.caption = __('Deploy');
    this.addClass('jp-deploy-panel');
    this.toolbar.addClass('jp-deploy-toolbar');
    this.toolbar.addItem('title', new Widget({ node: h('h1', { className: 'jp-deploy-title' }, __('Deploy')) }));
    this.picker = new ProjectPicker(this.model, project => void this.pick(project));
    this.toolbar.addItem('project', new Widget({ node: this.picker.node }));
    this.toolbar.addItem('spacer', Toolbar.createSpacerItem());
    this.toolbar.addItem('refresh', new ToolbarButton({
      icon: refreshIcon, tooltip: __('Refresh'), onClick: () => void this.model.refresh()
    }));
    this.creators = [new ToolbarButton({
      icon: addIcon, tooltip: __('New node from a checkpoint'), onClick: () => void this.newNode('checkpoint')
    }), new ToolbarButton({
      icon: addIcon, label: __('Image'), tooltip: __('New node from a Docker image'), onClick: () => void this.newNode('image')
    })];
    this.toolbar.addItem('new-node', this.creators[0]);
    this.toolbar.addItem('new-image-node', this.creators[1]);
    this.toolbar.addItem('settings', new ToolbarButton({
      icon: settingsIcon, tooltip: __('Deploy settings'), onClick: () => settings.openSettings()
    }));
    this.nodes = new NodesView(this.model, settings.open, settings.writeMagic);
    this.aliases = new AliasesView(this.model, url => this.shown(url), node => this.nodes.rates.get(node));
    this.members = new MembersView(this.model);
    this.auditView = new AuditView(this.model);
    this.body.node.append(this.summary, this.error.node, this.down,
      this.section('nodes', this.nodes.node),
      this.section('aliases', this.aliases.node),
      this.section('checkpoints', this.checkpoints),
      this.section('members', this.members.node, false),
      this.section('audit', this.auditView.node, false));
    this.addWidget(this.toolbar);
    this.addWidget(this.body);
    this.model.changed.connect(() => this.render());
    void this.model.start();
    this.timer = window.setInterval(() => void this.nodes.sample(), Math.max(settings.refresh(), 1) * 1000);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    this.model.dispose();
    super.dispose();
  }

  /** The gateway address users are shown for `url` (the setting, else the service's). */
  shown(url: string): string {
    const shown = this.settings.gatewayUrl();
    return shown && this.model.gatewayUrl ? url.split(this.model.gatewayUrl).join(shown) : url;
  }

  render(): void {
    // the service not running is said where the nodes would be, plainly, not as a passing error
    const down = serviceDown(this.model.error);
    this.down.replaceChildren(...(down ? [h('strong', {}, __('No node can be shown')), h('p', {}, down)] : []));
    this.down.classList.toggle('jp-deploy-service-down-shown', Boolean(down));
    const single = this.model.projects.length <= 1; // a single Lab: no members or audit to show
    this.sections.forEach((section, name) => {
      section.hidden = Boolean(down) || (single && (name === 'members' || name === 'audit'));
    });
    this.error.show(down ? null : this.model.error);
    this.picker.render();
    const editor = this.editor();
    for (const creator of this.creators) {
      creator.enabled = editor;
      creator.node.title = editor ? '' : needs('editor');
    }
    const project = this.model.project;
    this.title.caption = project ? __('Deploy: project %1', project) : __('Deploy');
    const nodes = this.model.nodes;
    const unhealthy = nodes.filter(n => n.status === 'Unhealthy').length;
    const gateway = this.settings.gatewayUrl() || this.model.gatewayUrl;
    this.summary.replaceChildren(
      this.model.projects.length > 1 ? h('span', { className: 'jp-deploy-summary-project' }, __('Project %1', project), ' · ') : '',
      `${nodes.length === 1 ? __('1 node') : __('%1 nodes', nodes.length)} · ${__('%1 unhealthy', unhealthy)}`,
      gateway ? ' · ' : '',
      gateway ? h('a', { href: gateway, target: '_blank', rel: 'noopener', className: 'jp-deploy-gateway' }, __('gateway ↗')) : '');
    this.summary.title = gateway ? __('Gateway: %1', gateway) : '';
    this.count('nodes', nodes.length);
    this.count('aliases', this.model.aliases.length);
    this.count('checkpoints', new Set(this.model.checkpoints.map(c => c.name)).size);
    this.nodes.render();
    this.aliases.render();
    this.renderCheckpoints();
    this.count('members', this.model.info?.members.length ?? 0);
    this.count('audit', this.model.audit.length);
    this.members.render();
    this.auditView.render();
  }

  /** Whether the caller may deploy in the shown project (an editor or an admin). */
  private editor(): boolean {
    const info = this.model.info;
    return !info || allows(info.role, 'editor');
  }

  private async pick(project: string): Promise<void> {
    if (project !== this.model.project) {
      await this.model.switchTo(project);
      this.settings.projectChanged?.(project);
    }
  }

  private section(name: string, content: HTMLElement, open = true): HTMLElement {
    const titles: Record<string, string> = {
      nodes: __('Nodes'), aliases: __('Aliases'), checkpoints: __('Checkpoints'), members: __('Members and quotas'), audit: __('Audit')
    };
    const details = h('details', { className: `jp-deploy-section jp-deploy-section-${name}`, open },
      h('summary', { className: 'jp-deploy-heading' }, titles[name], h('span', { className: 'jp-deploy-count' })), content);
    this.sections.set(name, details);
    return details;
  }

  private count(name: string, n: number): void {
    const count = this.sections.get(name)?.querySelector('.jp-deploy-count');
    if (count) {
      count.textContent = ` (${n})`;
    }
  }

  private async newNode(source: 'checkpoint' | 'image', preset = ''): Promise<void> {
    const made = await createNode(this.model.checkpoints, source, this.settings.runtime(), preset);
    if (made) {
      showKey(__('node %1', made.name), made.key);
      await this.model.refresh();
      this.settings.open(made.name, __('Events')); // an image build streams there
    }
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
      const usedBy = this.model.nodes.filter(n => versions.some(v => v.id === n.checkpoint_id)).map(n => n.name);
      const created = latest.created ? new Date(latest.created * 1000).toLocaleString() : '';
      return h('li', { className: 'jp-deploy-checkpoint', 'data-checkpoint': name },
        h('div', { className: 'jp-deploy-row' }, h('button', {
          type: 'button', className: 'jp-deploy-name jp-deploy-link', title: __('Open checkpoint %1', name),
          onclick: () => this.settings.openCheckpoint(`${name}@${latest.version}`)
        }, name),
          h('span', { className: 'jp-deploy-muted' }, __('version %1', latest.version) + (created ? ` · ${created}` : '')),
          h('span', { className: 'jp-deploy-spacer' }),
          gate(button(__('Deploy'), () => void this.newNode('checkpoint', `${name}@${latest.version}`), 'jp-deploy-deploy-checkpoint'),
            this.editor(), 'editor')),
        h('div', { className: 'jp-deploy-meta' }, __('in: %1', fields(latest.inputs))),
        h('div', { className: 'jp-deploy-meta' }, __('out: %1', fields(latest.outputs))),
        h('div', { className: 'jp-deploy-meta' }, __('used by: %1', usedBy.join(', ') || __('no node'))));
    }));
    if (byName.size === 0) {
      this.checkpoints.append(h('li', { className: 'jp-deploy-empty' }, __('No checkpoint yet.')));
    }
  }

  /** A toast for what a user must know even when the panel is closed. */
  static toast(message: string, bad: boolean): void {
    if (bad) {
      Notification.warning(message, { autoClose: 8000 });
    } else {
      Notification.info(message, { autoClose: 5000 });
    }
  }
}
