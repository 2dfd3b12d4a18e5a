import { JupyterFrontEnd } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { __ } from './i18n';
import { deployedAt, recreateMagic } from './magic';
import { DeployModel } from './panel/model';
import { DeployPanel } from './panel/panel';
import { CheckpointView } from './view/checkpoint';

export namespace RecordCommandIDs {
  export const openCheckpoint = 'deploy:open-checkpoint';
  export const writeMagic = 'deploy:write-magic-cell';
}

/** The node's `%deploy` record, from what the model holds now; null when the node is gone. */
function recordOf(model: DeployModel, name: string): string | null {
  const node = model.nodes.find(n => n.name === name);
  if (!node) {
    return null;
  }
  const version = model.checkpoints.find(c => c.id === node.checkpoint_id);
  const checkpoint = version ? `${version.name}@${version.version}` : node.checkpoint;
  const aliases = model.aliases.filter(a => a.routing.some(r => r.node === name && r.weight > 0));
  return recreateMagic(node, checkpoint, aliases, deployedAt());
}

/** "Open checkpoint NAME@VERSION" and "Write a %deploy cell for node NODE". */
export function addRecordCommands(app: JupyterFrontEnd, tracker: INotebookTracker, panel: DeployPanel): void {
  const checkpointViews = new Map<string, CheckpointView>();
  app.commands.addCommand(RecordCommandIDs.openCheckpoint, {
    label: args => (args.checkpoint ? __('Open checkpoint %1', String(args.checkpoint)) : __('Open a checkpoint')),
    execute: args => {
      const [name, version] = String(args.checkpoint ?? '').split('@');
      if (!name) {
        return;
      }
      let view = checkpointViews.get(name);
      if (!view || view.isDisposed) {
        view = new CheckpointView(panel.model, name, version ? Number(version) : null);
        checkpointViews.set(name, view);
        app.shell.add(view, 'main');
      } else {
        void view.showVersion(version ? Number(version) : null);
      }
      app.shell.activateById(view.id);
    }
  });
  app.commands.addCommand(RecordCommandIDs.writeMagic, {
    label: args => __('Write a %deploy cell for node %1', String(args.node ?? '')),
    caption: __('Insert into the active notebook the %deploy commands that make the node again (no key)'),
    execute: args => {
      const notebook = tracker.currentWidget;
      const record = recordOf(panel.model, String(args.node ?? ''));
      if (!notebook || record === null) {
        DeployPanel.toast(notebook ? __('Node %1 no longer exists', String(args.node ?? ''))
          : __('Open a notebook first: the %deploy cell goes into it'), true);
        return;
      }
      NotebookActions.insertBelow(notebook.content);
      notebook.content.activeCell!.model.sharedModel.setSource(record);
      app.shell.activateById(notebook.id);
      DeployPanel.toast(__('The %deploy cell of node %1 is in %2', String(args.node), notebook.title.label), false);
    }
  });
}
