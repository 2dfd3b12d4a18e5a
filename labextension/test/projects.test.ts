import { allows, auditRows, inProject, orderProjects, pickProject, ProjectInfo, quotaBody, serviceDown } from '../src/projects';

const project = (name: string, personal = false): ProjectInfo =>
  ({ name, personal, role: 'admin', members: [], quotas: {} });

describe('projects', () => {
  it('lists the personal project first, then the shared ones by name', () => {
    const ordered = orderProjects([project('zeta'), project('alice', true), project('beta')]);
    expect(ordered.map(p => p.name)).toEqual(['alice', 'beta', 'zeta']);
  });

  it('keeps the picked project while the caller has it, else shows the first', () => {
    const list = [project('alice', true), project('team')];
    expect(pickProject(list, 'team')).toBe('team');
    expect(pickProject(list, 'gone')).toBe('alice');
    expect(pickProject([], 'team')).toBe('');
  });

  it('puts every call but /projects and the root in the project', () => {
    expect(inProject('nodes', 'team')).toBe('nodes?project=team');
    expect(inProject('events?since=3&wait=25', 'team')).toBe('events?since=3&wait=25&project=team');
    expect(inProject('nodes/a/logs?tail=1', 'a b')).toBe('nodes/a/logs?tail=1&project=a%20b');
    expect(inProject('projects/team/events', 'team')).toBe('projects/team/events');
    expect(inProject('', 'team')).toBe('');
    expect(inProject('nodes/a?project=', 'team')).toBe('nodes/a?project=');
    expect(inProject('nodes', '')).toBe('nodes');
  });

  it('ranks viewer below editor below admin', () => {
    expect(allows('admin', 'admin')).toBe(true);
    expect(allows('editor', 'admin')).toBe(false);
    expect(allows('editor', 'viewer')).toBe(true);
    expect(allows(null, 'viewer')).toBe(false);
  });

  it('shows the audit newest first', () => {
    const events = [1, 3, 2].map(seq => ({ seq, time: seq, user: 'default', action: 'a', target: 't' }));
    expect(auditRows(events).map(e => e.seq)).toEqual([3, 2, 1]);
    expect(auditRows(events, 1).map(e => e.seq)).toEqual([3]);
  });

  it('reads the quotas form: blank is unlimited, a bad number names its field', () => {
    expect(quotaBody({ instances: '4', memory: ' 8192 ', cpus: '' })).toEqual(
      { body: { instances: 4, memory: 8192, cpus: null, gpus: null, disk: null } });
    expect(quotaBody({ instances: '4', memory: '-1' })).toEqual({ field: 'memory' });
    expect(quotaBody({ gpus: 'two' })).toEqual({ field: 'gpus' });
  });

  it('tells the service not running from any other error', () => {
    const message = 'the deploy service is not running: port 8890 is taken by the shared service at http://127.0.0.1:8890';
    expect(serviceDown({ status: 503, message })).toBe(message);
    expect(serviceDown({ status: 403, message: 'this needs the admin role' })).toBe('');
    expect(serviceDown(null)).toBe('');
  });
});
