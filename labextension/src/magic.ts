/** What the Deploy cell dialog sends to the kernel. */
export interface DeployRequest {
  checkpoint: string;
  node: string;
  inputs: string;
  outputs: string;
  runtime: string;
  min: number;
  max: number;
  /** Write the `%deploy` commands that make the node again into a cell below. */
  record?: boolean;
}

const PIN = /^%%deploy\s+pin\s+(\S+)(.*)$/;

/** A cell's source without a first `%%deploy pin` line, and that line's name, if any. */
export function splitPin(source: string): { name: string; body: string } {
  const [first, ...rest] = source.split('\n');
  const match = PIN.exec(first.trim());
  return match ? { name: match[1], body: rest.join('\n') } : { name: '', body: source };
}

/** A DNS-label name from anything. */
export function toName(text: string, fallback: string): string {
  const name = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63);
  return name || fallback;
}

/** The kernel code that pins the cell's body, then the code that creates the node. */
export function magics(request: DeployRequest, body: string): [string, string] {
  const inputs = request.inputs.replace(/\s+/g, '');
  const outputs = request.outputs.replace(/\s+/g, '');
  let pin = `%%deploy pin ${request.checkpoint}`;
  if (inputs) {
    pin += ` --inputs ${inputs}`;
  }
  if (outputs) {
    pin += ` --outputs ${outputs}`;
  }
  const create =
    `%deploy node create ${request.node} --checkpoint ${request.checkpoint}` +
    ` --min ${request.min} --max ${request.max} --runtime ${request.runtime}`;
  return [`${pin}\n${body}`, create];
}

/** When, as a record cell says it: "2026-12-01 15:20 UTC". */
export function deployedAt(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A word as the magics' shell-like parser reads it back. */
export function quoted(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/** What a node was made with, as the record cell needs it. */
export interface DeployedNode {
  name: string;
  image: string;
  runtime: string;
  min: number;
  max: number;
  config?: string;
  env?: Record<string, string>;
  port?: number;
}

/** An alias routing to the node, as the record cell needs it. */
export interface DeployedAlias {
  name: string;
  nodes: Record<string, number>;
  public: boolean;
  shadow?: { node: string; percent: number } | null;
  sticky?: Record<string, string> | null;
}

/** The `%deploy` commands that would make the node (and the aliases that route to it) again;
 * no key: a key is shown once, when it is made. */
export function recreateMagic(node: DeployedNode, checkpoint: string, aliases: DeployedAlias[], when: string): string {
  let create = `%deploy node create ${node.name} ` + (node.image
    ? `--image ${quoted(node.image)}${node.port ? ` --port ${node.port}` : ''}`
    : `--checkpoint ${checkpoint}`);
  create += ` --min ${node.min} --max ${node.max} --runtime ${node.runtime}`;
  if (node.config) {
    create += ` --config ${quoted(node.config)}`;
  }
  for (const [key, value] of Object.entries(node.env ?? {})) {
    create += ` --env ${quoted(`${key}=${value}`)}`;
  }
  const lines = [
    `# node ${node.name}, as deployed ${when}` + (node.image ? '' : ` from checkpoint ${checkpoint}`),
    '# (its key is not recorded: the service shows a key once, when it is made; secrets neither)',
    '%load_ext jupyter_deploy',
    create
  ];
  for (const alias of aliases) {
    let set = `%deploy alias set ${alias.name} ` +
      Object.entries(alias.nodes).map(([n, w]) => `${n}=${w}`).join(' ');
    if (alias.public) {
      set += ' --public';
    }
    if (alias.shadow) {
      set += ` --shadow ${alias.shadow.node}=${alias.shadow.percent}`;
    }
    const [kind, name] = Object.entries(alias.sticky ?? {})[0] ?? [];
    if (kind) {
      set += ` --sticky ${quoted(`${kind}:${name}`)}`;
    }
    lines.push(set);
  }
  return lines.join('\n');
}
