import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { deployCell } from './deploycell';
import { deployIcon } from './icons';
import { DeployPanel } from './panel/panel';

const PLUGIN_ID = 'jupyterlab-deploy:plugin';

export namespace CommandIDs {
  export const deployCell = 'deploy:deploy-cell';
  export const openPanel = 'deploy:open-panel';
}

/** The side panel, and "Deploy cell" on the notebook toolbar, the cell menu and the palette. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Deploy notebook cells as services: side panel and Deploy cell button.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ) => {
    const current = { gatewayUrl: '', refresh: 5, runtime: 'process' };
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
    const panel = new DeployPanel({
      gatewayUrl: () => current.gatewayUrl,
      refresh: () => current.refresh,
      runtime: () => current.runtime
    });
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, 'jupyterlab-deploy-panel');

    app.commands.addCommand(CommandIDs.deployCell, {
      label: 'Deploy cell',
      caption: 'Pin the active cell as a checkpoint and deploy it as a node',
      icon: args => (args.toolbar ? deployIcon : undefined),
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const notebook = tracker.currentWidget;
        if (notebook) {
          await deployCell(notebook, current.runtime);
          await panel.model.refresh();
        }
      }
    });
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show the Deploy panel',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: CommandIDs.deployCell, category: 'Deploy' });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'Deploy' });
  }
};

export default plugin;
