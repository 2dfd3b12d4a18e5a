import { closeIcon } from '@jupyterlab/ui-components';

import { json, requestAPI } from '../api';
import { __ } from '../i18n';
import { allows, Member, QUOTAS, QuotaName, quotaBody, Role, ROLES } from '../projects';
import { button, ErrorLine, guarded, h, iconButton, selectField, setEnabled, textField, ToolkitButton, ToolkitField } from './dom';
import { DeployModel } from './model';

const QUOTA_LABELS: Record<QuotaName, string> = {
  instances: 'Instances', memory: 'Memory (MB)', cpus: 'CPUs', gpus: 'GPUs', disk: 'Disk (MB)'
};

/** A labelled select of the toolkit (`jp-select`). */
export function select(name: string, label: string, options: [string, string][], value: string,
  onchange?: (value: string) => void): ToolkitField {
  return selectField({ name, 'aria-label': label, title: label, className: 'jp-deploy-select' }, options, value, onchange);
}

/** The toolbar's project picker: a select when the caller has several, a quiet label otherwise. */
export class ProjectPicker {
  readonly node = h('div', { className: 'jp-deploy-project-picker' });

  constructor(private model: DeployModel, private picked: (project: string) => void) {}

  render(): void {
    const projects = this.model.projects;
    // a 250 px panel has no room for both: the picker, named "Project", takes the title's place
    this.node.closest('.jp-deploy-toolbar')?.classList.toggle('jp-deploy-toolbar-picking', projects.length > 1);
    if (projects.length <= 1) {
      this.node.replaceChildren(h('span', { className: 'jp-deploy-muted jp-deploy-project-label', title: __('Project %1', this.model.project) },
        this.model.project));
      return;
    }
    const options = projects.map(p => [p.name, p.personal ? __('%1 (personal)', p.name) : __('%1 (%2)', p.name, __(p.role ?? ''))] as [string, string]);
    this.node.replaceChildren(select('project', __('Project'), options, this.model.project, v => this.picked(v)));
  }
}

/** The tooltip of a control the caller's role does not allow. */
export function needs(role: Role): string {
  return __('Needs the %1 role in this project', __(role));
}

/** A control the caller's role does not allow: disabled, with a tooltip naming the role needed. */
export function gate<T extends HTMLElement>(control: T, allowed: boolean, need: Role): T {
  if (control.tagName === 'JP-BUTTON') {
    setEnabled(control as unknown as ToolkitButton, allowed);
  } else {
    (control as unknown as HTMLInputElement).disabled = !allowed;
  }
  if (!allowed) {
    control.title = needs(need);
  }
  return control;
}

/** The project's members (admins change them) and quotas (admins edit them). */
export class MembersView {
  readonly node = h('div', { className: 'jp-deploy-members' });
  private error = new ErrorLine();
  private shown = '';

  constructor(private model: DeployModel) {}

  /** Drawn again only when the members, quotas or role change: what is being typed stays. */
  render(): void {
    const info = this.model.info;
    const shown = JSON.stringify(info ?? null);
    if (shown === this.shown) {
      return;
    }
    this.shown = shown;
    if (!info) {
      this.node.replaceChildren();
      return;
    }
    const admin = allows(info.role, 'admin');
    const roles = ROLES.map(r => [r, __(r)] as [string, string]);
    const rows = info.members.map(m => {
      const role = select('role', __('Role of %1 %2', __(m.kind), m.name), roles, m.role,
        v => void this.put(m.kind, m.name, v));
      const remove = iconButton(closeIcon, __('Remove %1 %2', __(m.kind), m.name), () => void this.remove(m), 'jp-deploy-remove-member');
      gate(role, admin, 'admin');
      gate(remove, admin, 'admin');
      return h('li', { className: 'jp-deploy-member jp-deploy-row', 'data-member': `${m.kind}/${m.name}` },
        h('span', { className: 'jp-deploy-muted' }, __(m.kind)), h('span', { className: 'jp-deploy-name' }, m.name),
        h('span', { className: 'jp-deploy-spacer' }), role, remove);
    });
    const kind = select('kind', __('User or group'), [['user', __('user')], ['group', __('group')]], 'user');
    const name = textField({ className: 'jp-deploy-member-name', name: 'member', 'aria-label': __('Member name'), placeholder: __('name') });
    const role = select('new-role', __('Role'), roles, 'viewer');
    const add = button(__('Add'), () => void this.put(kind.value, name.value.trim(), role.value), 'jp-deploy-add-member');
    [kind, name, role, add].forEach(c => gate(c, admin, 'admin'));
    this.node.replaceChildren(
      h('div', { className: 'jp-deploy-meta' }, __('Your role: %1', __(info.role ?? ''))),
      h('ul', { className: 'jp-deploy-list' }, ...rows),
      h('div', { className: 'jp-deploy-row jp-deploy-member-add' }, kind, name, role, add),
      this.quotas(admin), this.error.node);
  }

  private quotas(admin: boolean): HTMLElement {
    const quotas = this.model.info?.quotas ?? {};
    const inputs = new Map<QuotaName, ToolkitField>(QUOTAS.map(q => [q, textField({
      name: `quota-${q}`, type: 'text', size: 6,
      value: quotas[q] == null ? '' : String(quotas[q]), placeholder: __('unlimited'), 'aria-label': __(QUOTA_LABELS[q])
    })]));
    const save = button(__('Save quotas'), () => void this.saveQuotas(inputs), 'jp-deploy-save-quotas');
    [...inputs.values(), save].forEach(c => gate(c, admin, 'admin'));
    return h('fieldset', { className: 'jp-deploy-quotas' }, h('legend', {}, __('Quotas')),
      ...QUOTAS.map(q => h('label', { className: 'jp-deploy-quota' }, h('span', {}, __(QUOTA_LABELS[q])), inputs.get(q)!)),
      save);
  }

  private path(): string {
    return `projects/${encodeURIComponent(this.model.project)}`;
  }

  private async put(kind: string, name: string, role: string): Promise<void> {
    if (!name) {
      this.error.show(__('Name the user or group to add.'));
      return;
    }
    const path = `${this.path()}/members/${kind}/${encodeURIComponent(name)}`;
    if (await guarded(this.error, () => requestAPI(path, json('PUT', { role })))) {
      await this.model.refresh();
    }
  }

  private async remove(member: Member): Promise<void> {
    const path = `${this.path()}/members/${member.kind}/${encodeURIComponent(member.name)}`;
    if (await guarded(this.error, () => requestAPI(path, { method: 'DELETE' }))) {
      await this.model.refresh();
    }
  }

  private async saveQuotas(inputs: Map<QuotaName, ToolkitField>): Promise<void> {
    const parsed = quotaBody(Object.fromEntries([...inputs].map(([q, i]) => [q, i.value])));
    if ('field' in parsed) {
      this.error.show(__('%1: a number of 0 or more, or blank for unlimited', __(QUOTA_LABELS[parsed.field])));
      return;
    }
    if (await guarded(this.error, () => requestAPI(`${this.path()}/quotas`, json('PUT', parsed.body)))) {
      await this.model.refresh();
    }
  }
}

/** The project's audit, newest first: time, user, action, target. */
export class AuditView {
  readonly node = h('table', { className: 'jp-deploy-audit' });

  constructor(private model: DeployModel) {}

  render(): void {
    const head = h('tr', {}, ...[__('Time'), __('User'), __('Action'), __('Target')].map(t => h('th', { scope: 'col' }, t)));
    const rows = this.model.audit.map(e => h('tr', { className: 'jp-deploy-audit-row', title: e.message ?? undefined },
      h('td', {}, new Date(e.time * 1000).toLocaleString()), h('td', { className: 'jp-deploy-audit-user' }, e.user),
      h('td', {}, e.action), h('td', {}, e.target)));
    this.node.replaceChildren(h('thead', {}, head), h('tbody', {}, ...rows));
    if (!rows.length) {
      this.node.append(h('caption', { className: 'jp-deploy-empty' }, __('Nothing done in this project yet.')));
    }
  }
}
