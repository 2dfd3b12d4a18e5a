import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { inProject } from './projects';

let project = '';

/** The project every call acts in from now on ('' : the caller's personal one). */
export function setProject(name: string): void {
  project = name;
}

/** The project the console shows. */
export function currentProject(): string {
  return project;
}

/** An error answered by the control API, with its message and field when it gave them. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly field?: string
  ) {
    super(message);
  }
}

/** The raw response of a control-API call under /deploy/api (for streams), in the current
 * project unless the path names one. */
export async function requestRaw(
  endPoint: string,
  init: RequestInit = {}
): Promise<Response> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'deploy', 'api', inProject(endPoint, project));
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new APIError(`the Jupyter server cannot be reached: ${error}`, 0);
  }
  if (!response.ok) {
    throw await errorOf(response);
  }
  return response;
}

async function errorOf(response: Response): Promise<APIError> {
  if (response.status === 404 && !response.headers.get('content-type')?.includes('json')) {
    return new APIError(
      'the jupyter_deploy server extension is missing: is it installed and enabled?',
      404
    );
  }
  let body: any = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says enough
  }
  const error = body?.error;
  if (error?.message) {
    return new APIError(error.message, response.status, error.field);
  }
  if (body?.error_name) {
    return new APIError(`${body.error_name}: ${body.error_message}`, response.status);
  }
  return new APIError(`${response.status} ${response.statusText}`, response.status);
}

/** Call the control API; JSON in, JSON out; an answer that is not 2xx throws an APIError. */
export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const response = await requestRaw(endPoint, init);
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** A JSON body for requestAPI. */
export function json(method: string, body: unknown): RequestInit {
  return { method, body: JSON.stringify(body) };
}
