/** What the Deploy cell dialog sends to the kernel. */
export interface DeployRequest {
  checkpoint: string;
  node: string;
  inputs: string;
  outputs: string;
  runtime: string;
  min: number;
  max: number;
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
