/** Projects as the console sees them: the caller's list, roles, the audit, quotas (pure). */

export type Role = 'viewer' | 'editor' | 'admin';

export const ROLES: Role[] = ['viewer', 'editor', 'admin'];
export const QUOTAS = ['instances', 'memory', 'cpus', 'gpus', 'disk'] as const;
export type QuotaName = (typeof QUOTAS)[number];

export interface Member {
  kind: 'user' | 'group';
  name: string;
  role: Role;
}

export interface ProjectInfo {
  name: string;
  personal: boolean;
  role: Role | null;
  members: Member[];
  quotas: Partial<Record<QuotaName, number | null>>;
  created?: number;
  creator?: string;
}

/** One entry of a project's audit (`GET /deploy/api/projects/{project}/events`). */
export interface AuditEvent {
  seq: number;
  time: number;
  user: string;
  action: string;
  target: string;
  message?: string | null;
  project?: string;
}

/** The personal project first, then the shared ones by name. */
export function orderProjects(projects: ProjectInfo[]): ProjectInfo[] {
  return [...projects].sort((a, b) =>
    Number(b.personal) - Number(a.personal) || a.name.localeCompare(b.name));
}

/** The project to show: the one picked if the caller still has it, else the first listed. */
export function pickProject(projects: ProjectInfo[], wanted: string): string {
  return projects.some(p => p.name === wanted) ? wanted : (projects[0]?.name ?? '');
}

/** Whether `role` may do what needs `need` (viewer < editor < admin). */
export function allows(role: Role | null | undefined, need: Role): boolean {
  return role ? ROLES.indexOf(role) >= ROLES.indexOf(need) : false;
}

/** `endPoint` in `project`: `?project=NAME` added, except on /projects (named in the path), the
 * service's root, and a path that names its project already. */
export function inProject(endPoint: string, project: string): string {
  if (!project || endPoint === '' || endPoint.startsWith('projects') || /[?&]project=/.test(endPoint)) {
    return endPoint;
  }
  const separator = endPoint.includes('?') ? '&' : '?';
  return `${endPoint}${separator}project=${encodeURIComponent(project)}`;
}

/** The audit newest first, at most `limit` rows. */
export function auditRows(events: AuditEvent[], limit = 200): AuditEvent[] {
  return [...events].sort((a, b) => b.seq - a.seq).slice(0, limit);
}

/** The quotas form's text as the API takes it: blank is unlimited (null); else a number ≥ 0, or
 * the name of the first field that is not. */
export function quotaBody(
  values: Partial<Record<QuotaName, string>>
): { body: Partial<Record<QuotaName, number | null>> } | { field: QuotaName } {
  const body: Partial<Record<QuotaName, number | null>> = {};
  for (const name of QUOTAS) {
    const text = (values[name] ?? '').trim();
    const value = Number(text);
    if (text !== '' && !(Number.isFinite(value) && value >= 0)) {
      return { field: name };
    }
    body[name] = text === '' ? null : value;
  }
  return { body };
}

/** The message of a 503 "the deploy service is not running: ...", or '' for any other error. */
export function serviceDown(error: unknown): string {
  const e = error as { status?: number; message?: string } | null;
  return e && e.status === 503 && e.message ? e.message : '';
}
