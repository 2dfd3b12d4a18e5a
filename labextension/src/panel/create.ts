import { Dialog } from '@jupyterlab/apputils';

import { json, requestAPI } from '../api';
import { __ } from '../i18n';
import { validateRange } from '../state';
import { h, labelled, selectField, textField } from './dom';
import { CheckpointInfo } from './model';
import { WidgetOf } from './nodes';

/** What the New node form sends: POST /deploy/api/nodes. */
export interface NodeForm {
  source: 'checkpoint' | 'image';
  body: Record<string, unknown>;
  errors: string[];
}

/** `K=V` lines as an object; lines without `=` are named in the errors. */
export function parseEnv(text: string): { env: Record<string, string>; errors: string[] } {
  const env: Record<string, string> = {};
  const errors: string[] = [];
  text.split('\n').map(l => l.trim()).filter(Boolean).forEach((line, i) => {
    const at = line.indexOf('=');
    if (at <= 0) {
      errors.push(__('line %1 of the environment is not NAME=VALUE', i + 1));
    } else {
      env[line.slice(0, at)] = line.slice(at + 1);
    }
  });
  return { env, errors };
}

function field(label: string, control: HTMLElement, id: string): HTMLElement[] {
  control.id = id;
  return labelled(label, control);
}

/** The New node dialog, from a checkpoint or a Docker image; the node made, or null. */
export async function createNode(
  checkpoints: CheckpointInfo[], source: 'checkpoint' | 'image', runtime: string, preset = ''
): Promise<{ name: string; key: string } | null> {
  const input = (name: string, value = '', type = 'text') => textField({ name, value, type });
  const name = input('node', preset ? `${preset.split('@')[0]}-node` : '');
  const refs = [...new Set(checkpoints.map(c => c.name))].flatMap(n =>
    [n, ...checkpoints.filter(c => c.name === n).map(c => `${n}@${c.version}`)]);
  const checkpoint = selectField({ name: 'checkpoint' }, refs.map(r => [r, r]), preset || refs[0]);
  const image = input('image', '');
  const port = input('port', '8080', 'number');
  const runtimeSelect = selectField({ name: 'runtime' }, [['process', 'process'], ['docker', 'docker']],
    source === 'image' ? 'docker' : runtime);
  const min = input('min', '1', 'number');
  const max = input('max', '1', 'number');
  const config = input('config', '');
  const health = input('health-path', source === 'image' ? '/' : '');
  const env = h('textarea', { className: 'jp-mod-styled', name: 'env', rows: 3 });
  const batchSize = input('batch-max-size', '', 'number');
  const batchWait = input('batch-max-wait-ms', '', 'number');
  const problems = h('div', { className: 'jp-deploy-error jp-deploy-validation', role: 'status' });
  const form = (): NodeForm => {
    const parsed = parseEnv(env.value);
    const body: Record<string, unknown> = { name: name.value.trim(), runtime: runtimeSelect.value,
      min: Number(min.value), max: Number(max.value) };
    if (source === 'checkpoint') {
      body.checkpoint = checkpoint.value;
    } else {
      Object.assign(body, { image: image.value.trim(), port: Number(port.value) });
    }
    if (config.value.trim()) {
      body.config = config.value.trim();
    }
    if (health.value.trim()) {
      body.health = { path: health.value.trim() };
    }
    if (Object.keys(parsed.env).length) {
      body.env = parsed.env;
    }
    if (batchSize.value.trim()) { // adaptive batching (issue 18): sent only when asked for
      body.batch = { max_size: Number(batchSize.value), max_wait_ms: Number(batchWait.value || 0) };
    }
    const errors = [...validateRange(min.value, max.value, __), ...parsed.errors];
    if (!body.name) {
      errors.unshift(__('give the node a name'));
    }
    return { source, body, errors };
  };
  const body = h('div', { className: 'jp-deploy-form jp-deploy-create-form' },
    ...field(__('Node name'), name, 'jp-deploy-create-name'),
    ...(source === 'checkpoint'
      ? field(__('Checkpoint'), checkpoint, 'jp-deploy-create-checkpoint')
      : [...field(__('Image'), image, 'jp-deploy-create-image'), ...field(__('Port'), port, 'jp-deploy-create-port')]),
    ...field(__('Runtime'), runtimeSelect, 'jp-deploy-create-runtime'),
    ...field(__('Minimum instances'), min, 'jp-deploy-create-min'),
    ...field(__('Maximum instances'), max, 'jp-deploy-create-max'),
    ...field(__('Configuration (CPU, memory)'), config, 'jp-deploy-create-config'),
    ...field(__('Health-check path'), health, 'jp-deploy-create-health'),
    ...field(__('Environment (NAME=VALUE lines)'), env, 'jp-deploy-create-env'),
    ...(source === 'checkpoint' ? [
      ...field(__('Batch: largest batch (empty: no batching)'), batchSize, 'jp-deploy-create-batch-size'),
      ...field(__('Batch: longest wait (ms)'), batchWait, 'jp-deploy-create-batch-wait')] : []),
    problems);
  for (;;) {
    const dialog = new Dialog({
      title: source === 'checkpoint' ? __('New node from a checkpoint') : __('New node from a Docker image'),
      body: new WidgetOf(body, form),
      buttons: [Dialog.cancelButton({ label: __('Cancel') }), Dialog.okButton({ label: __('Create') })]
    });
    const result = await dialog.launch();
    if (!result.button.accept || !result.value) {
      return null;
    }
    const { errors, body: request } = result.value;
    problems.textContent = errors.join('; ');
    if (errors.length) {
      continue; // the dialog again, with what is wrong, and what was typed
    }
    try {
      const made = await requestAPI<{ key: string }>('nodes', json('POST', request));
      return { name: String(request.name), key: made.key };
    } catch (error) {
      problems.textContent = (error as Error).message;
    }
  }
}
