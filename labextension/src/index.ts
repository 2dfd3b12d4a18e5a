import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { deployCell } from './deploycell';
import { DeployEvent } from './follow';
import { __, setTranslator } from './i18n';
import { deployIcon } from './icons';
import { h } from './panel/dom';
import { DeployPanel } from './panel/panel';
import { instanceRecords } from './state';
import { addRecordCommands, RecordCommandIDs } from './records';
import { NodeView } from './view/nodeview';

const PLUGIN_ID = 'jupyterlab-deploy:plugin';

export namespace CommandIDs {
  export const deployCell = 'deploy:deploy-cell';
  export const openPanel = 'deploy:open-panel';
  export const openNode = 'deploy:open-node';
  export const openCheckpoint = RecordCommandIDs.openCheckpoint;
  export const writeMagic = RecordCommandIDs.writeMagic;
}

/** What a user must hear of an event even when the panel is closed: a replacement, a node down. */
function announcement(event: DeployEvent, events: DeployEvent[]): { text: string; bad: boolean } | null {
  if (!event.instance && event.status === 'Unhealthy') {
    return { text: __('Node %1 is Unhealthy', event.node ?? ''), bad: true };
  }
  if (event.instance && event.message === 'removed') {
    const record = instanceRecords(events).find(r => r.id === event.instance);
    return record?.replaced
      ? { text: __('Instance %1 of node %2 was replaced: %3', event.instance, event.node ?? '', record.reason), bad: true }
      : { text: __('Instance %1 of node %2 was removed', event.instance, event.node ?? ''), bad: false };
  }
  if (!event.instance && event.status === 'Healthy') {
    return { text: __('Node %1 is Healthy', event.node ?? ''), bad: false };
  }
  return null;
}

/** The side panel, the node views, and "Deploy cell" on the notebook toolbar, cell menu and palette. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Deploy notebook cells as services: side panel, node views and Deploy cell button.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer, ITranslator, IStatusBar],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    statusBar: IStatusBar | null
  ) => {
    if (translator) {
      setTranslator(translator);
    }
    const current = { gatewayUrl: '', refresh: 5, runtime: 'process' };
    const views = new Map<string, NodeView>();
    const open = (node: string, tab?: string) => void app.commands.execute(CommandIDs.openNode, { node, tab: tab ?? '' });
    const openCheckpoint = (ref: string) => void app.commands.execute(CommandIDs.openCheckpoint, { checkpoint: ref });
    const writeMagic = (node: string) => void app.commands.execute(CommandIDs.writeMagic, { node });
    const panel = new DeployPanel({
      gatewayUrl: () => current.gatewayUrl,
      refresh: () => current.refresh,
      runtime: () => current.runtime,
      open,
      openCheckpoint,
      writeMagic,
      openSettings: () => void app.commands.execute('settingeditor:open', { query: 'Deploy' }),
      projectChanged: () => views.forEach(view => view.close()) // they showed the last project's nodes
    });
    if (registry) {
      try {
        const settings = await registry.load(PLUGIN_ID);
        const read = () => {
          current.gatewayUrl = settings.get('gatewayUrl').composite as string;
          current.refresh = settings.get('sparklineRefresh').composite as number;
          current.runtime = settings.get('defaultRuntime').composite as string;
        };
        read();
        settings.changed.connect(() => {
          read();
          panel.render();
        });
      } catch (error) {
        console.warn('jupyterlab-deploy: settings not loaded', error);
      }
    }
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'jupyterlab-deploy-panel');

    // status changes: announced to screen readers, toasted, counted in the status bar
    const live = h('div', { className: 'jp-deploy-live', 'aria-live': 'polite', role: 'status' });
    document.body.append(live);
    const counter = new Widget({ node: h('div', { className: 'jp-deploy-status-item' }) });
    panel.model.onEvent = event => {
      const said = announcement(event, panel.model.eventsOf(event.node ?? ''));
      if (said) {
        live.textContent = said.text;
        DeployPanel.toast(said.text, said.bad);
      }
    };
    panel.model.changed.connect(() => {
      const unhealthy = panel.model.nodes.filter(n => n.status === 'Unhealthy').length;
      counter.node.textContent = unhealthy ? __('%1 unhealthy nodes', unhealthy) : __('nodes healthy');
      counter.node.classList.toggle('jp-deploy-status-bad', unhealthy > 0);
    });
    counter.node.addEventListener('click', () => app.shell.activateById(panel.id));
    statusBar?.registerStatusItem('jupyterlab-deploy:status', { item: counter, align: 'left', rank: 50 });

    app.commands.addCommand(CommandIDs.openNode, {
      label: args => (args.node ? __('Open node %1', String(args.node)) : __('Open a node')),
      execute: args => {
        const name = String(args.node ?? '');
        if (!name) {
          return;
        }
        let view = views.get(name);
        if (!view || view.isDisposed) {
          view = new NodeView({
            model: panel.model,
            gateway: () => ({ actual: panel.model.gatewayUrl, shown: current.gatewayUrl }),
            openCheckpoint, writeMagic
          }, name);
          views.set(name, view);
          app.shell.add(view, 'main');
        }
        if (args.tab) {
          view.select(String(args.tab));
        }
        app.shell.activateById(view.id);
      }
    });
    addRecordCommands(app, tracker, panel);
    app.commands.addCommand(CommandIDs.deployCell, {
      label: __('Deploy cell'),
      caption: __('Pin the active cell as a checkpoint and deploy it as a node'),
      icon: args => (args.toolbar ? deployIcon : undefined),
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const notebook = tracker.currentWidget;
        if (notebook) {
          await deployCell(notebook, current.runtime, open);
          await panel.model.refresh();
        }
      }
    });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: __('Show the Deploy panel'),
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: CommandIDs.deployCell, category: __('Deploy') });
    palette?.addItem({ command: CommandIDs.openPanel, category: __('Deploy') });
    const listed = new Set<string>(); // each node's "Open node" is in the palette once
    panel.model.changed.connect(() => {
      for (const node of panel.model.nodes.filter(n => palette && !listed.has(n.name))) {
        listed.add(node.name);
        palette!.addItem({ command: CommandIDs.openNode, args: { node: node.name }, category: __('Deploy') });
      }
    });
  }
};

export default plugin;
