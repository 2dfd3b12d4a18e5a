import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { requestAPI } from '../api';
import { __ } from '../i18n';
import { deployIcon } from '../icons';
import { ErrorLine, guarded, h } from '../panel/dom';
import { DeployModel } from '../panel/model';
import { bytes } from './instances';

/** What GET /checkpoints/{ref} answers. */
export interface CheckpointDetail {
  id: string;
  name: string;
  version: number;
  source: string;
  inputs: { name: string; type?: unknown }[];
  outputs: { name: string; type?: unknown }[];
  environment?: { python?: string; requirements?: unknown; local_modules?: string[] };
  state?: string[];
  created?: number;
  batch?: boolean;
  versions?: number[];
}

/** What GET /checkpoints/{ref}/files answers. */
export interface CheckpointFiles {
  size_bytes: number;
  signed: boolean;
  files: { path: string; bytes: number }[];
}

function typeText(type: unknown): string {
  return type === undefined ? '—' : typeof type === 'string' ? type : JSON.stringify(type);
}

function fieldTable(caption: string, fields: { name: string; type?: unknown }[], className: string): HTMLElement {
  return h('table', { className: `jp-deploy-table ${className}` }, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, __('Name')), h('th', { scope: 'col' }, __('Type')))),
    h('tbody', {}, ...(fields.length ? fields : [{ name: '—' }]).map(f =>
      h('tr', {}, h('td', {}, f.name), h('td', {}, typeText(f.type))))));
}

/** The packages a checkpoint needs, one per line ("numpy==1.26.4"). */
export function requirementLines(requirements: unknown): string[] {
  if (Array.isArray(requirements)) {
    return requirements.map(String);
  }
  if (requirements && typeof requirements === 'object') {
    return Object.entries(requirements).map(([name, version]) => (version ? `${name}==${version}` : name));
  }
  return [];
}

/** A checkpoint version in the main area: fields and types, environment, source, files, size, signature. */
export class CheckpointView extends MainAreaWidget<Widget> {
  private error = new ErrorLine();
  private body = h('div', { className: 'jp-deploy-checkpoint-body' });

  constructor(
    private model: DeployModel,
    readonly checkpointName: string,
    version: number | null
  ) {
    const content = new Widget();
    super({ content });
    this.id = `jp-deploy-checkpoint-${checkpointName}`;
    this.addClass('jp-deploy-checkpoint-view');
    this.title.icon = deployIcon;
    this.title.closable = true;
    content.addClass('jp-deploy-tab-page');
    content.node.append(this.error.node, this.body);
    void this.showVersion(version);
  }

  /** Show one version (null: the latest). */
  async showVersion(version: number | null): Promise<void> {
    const ref = version ? `${this.checkpointName}@${version}` : this.checkpointName;
    this.title.label = ref;
    this.title.caption = __('Checkpoint %1', ref);
    await guarded(this.error, async () => {
      const [detail, files] = await Promise.all([
        requestAPI<CheckpointDetail>(`checkpoints/${ref}`), requestAPI<CheckpointFiles>(`checkpoints/${ref}/files`)]);
      this.draw(detail, files);
    });
  }

  private draw(c: CheckpointDetail, files: CheckpointFiles): void {
    const usedBy = this.model.nodes.filter(n => n.checkpoint_id === c.id).map(n => n.name);
    const picker = h('select', { className: 'jp-mod-styled', name: 'version', id: `${this.id}-version`,
      onchange: (e: Event) => void this.showVersion(Number((e.target as HTMLSelectElement).value)) },
    ...(c.versions ?? [c.version]).map(v => h('option', { value: v, selected: v === c.version }, String(v))));
    const env = c.environment ?? {};
    const packages = requirementLines(env.requirements);
    this.title.label = `${c.name}@${c.version}`;
    this.body.replaceChildren(
      h('h2', { className: 'jp-deploy-checkpoint-title' }, __('Checkpoint %1@%2', c.name, c.version)),
      h('div', { className: 'jp-deploy-row' }, h('label', { for: picker.id }, __('Version')), picker),
      h('dl', { className: 'jp-deploy-facts' },
        h('dt', {}, __('Pinned')), h('dd', {}, c.created ? new Date(c.created * 1000).toLocaleString() : '—'),
        h('dt', {}, __('Content id')), h('dd', { className: 'jp-deploy-checkpoint-id' }, c.id),
        h('dt', {}, __('Size')), h('dd', { className: 'jp-deploy-checkpoint-size' }, bytes(files.size_bytes)),
        h('dt', {}, __('Signed')), h('dd', { className: 'jp-deploy-checkpoint-signed' },
          files.signed ? __('signed by this installation\'s key') : __('not signed')),
        h('dt', {}, __('Python')), h('dd', {}, env.python ?? '—'),
        h('dt', {}, __('Used by')), h('dd', { className: 'jp-deploy-checkpoint-used' }, usedBy.join(', ') || __('no node'))),
      fieldTable(__('Inputs'), c.inputs, 'jp-deploy-checkpoint-inputs'),
      fieldTable(__('Outputs'), c.outputs, 'jp-deploy-checkpoint-outputs'),
      h('h3', {}, __('Environment')),
      h('ul', { className: 'jp-deploy-checkpoint-packages' },
        ...(packages.length ? packages : [__('no packages beyond the standard library')]).map(p => h('li', {}, p))),
      h('p', { className: 'jp-deploy-meta' }, __('local modules: %1', (env.local_modules ?? []).join(', ') || __('none'))),
      h('p', { className: 'jp-deploy-meta' }, __('state: %1', (c.state ?? []).join(', ') || __('none'))),
      h('h3', {}, __('Pinned cell')),
      h('pre', { className: 'jp-deploy-checkpoint-source' }, c.source),
      h('h3', {}, __('Files')),
      h('table', { className: 'jp-deploy-table jp-deploy-checkpoint-files' },
        h('tbody', {}, ...files.files.map(f => h('tr', {}, h('td', {}, f.path), h('td', {}, bytes(f.bytes)))))));
  }
}
