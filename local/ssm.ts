/**
 * A tiny SSM Parameter Store on 127.0.0.1 (AWS JSON 1.1, `X-Amz-Target: AmazonSSM.<Operation>`):
 * GetParameter, GetParameters, PutParameter (Overwrite, Tier, a new Version per put) and
 * GetParameterHistory, with SSM's error shapes ({__type, message}: ParameterNotFound,
 * ParameterAlreadyExists, ValidationException). Enough for the live policy
 * (functions/store/policy-parameter.ts) and for the AWS CLI or boto3 against the same calls.
 * Parameters persist in `<directory>/parameters.json`, written whole on every put.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closeServer, endpointOf, listen, LOCAL_ACCOUNT_ID, LOCAL_REGION, LOOPBACK, parseAwsJsonBody, readRequestBody, sendAwsJson, type LocalLogger } from './net.ts';

/** The live policy's parameter in the local stack (the construct's is named by CloudFormation). */
export const POLICY_PARAMETER_NAME = '/moderation/policy';

/** SSM's own limits: value characters by tier, versions kept per parameter. */
const VALUE_LIMITS = { Standard: 4096, Advanced: 8192 } as const;
const MAX_VERSIONS = 100;

type Tier = keyof typeof VALUE_LIMITS;

interface ParameterVersion {
  value: string;
  version: number;
  type: string;
  tier: Tier;
  description?: string;
  modifiedAt: string;
}

interface SavedParameters {
  parameters: Record<string, ParameterVersion[]>;
}

export interface LocalSsm {
  endpoint: string;
  port: number;
  /** The current version of a parameter, in this process (no HTTP). */
  get(name: string): ParameterVersion | undefined;
  /** PutParameter with Overwrite, in this process: the new version. */
  put(name: string, value: string, options?: { tier?: Tier; description?: string }): number;
  close(): Promise<void>;
}

export interface LocalSsmOptions {
  directory: string;
  port?: number;
  host?: string;
  region?: string;
  log?: LocalLogger;
}

class SsmError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

export async function startLocalSsm(options: LocalSsmOptions): Promise<LocalSsm> {
  const host = options.host ?? LOOPBACK;
  const region = options.region ?? LOCAL_REGION;
  mkdirSync(options.directory, { recursive: true });
  const file = join(options.directory, 'parameters.json');
  const saved: SavedParameters = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SavedParameters) : { parameters: {} };
  const parameters = new Map<string, ParameterVersion[]>(Object.entries(saved.parameters ?? {}));

  const persist = () => {
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify({ parameters: Object.fromEntries(parameters) }));
    renameSync(temporary, file);
  };
  const arnOf = (name: string) => `arn:aws:ssm:${region}:${LOCAL_ACCOUNT_ID}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
  const current = (name: string) => parameters.get(name)?.at(-1);
  const shape = (name: string, p: ParameterVersion) => ({
    Name: name,
    Type: p.type,
    Value: p.value,
    Version: p.version,
    LastModifiedDate: Date.parse(p.modifiedAt) / 1000,
    ARN: arnOf(name),
    DataType: 'text',
  });

  const put = (name: string, value: string, settings: { type?: string; tier?: string; description?: string; overwrite?: boolean } = {}): { version: number; tier: Tier } => {
    if (!name || name.length > 2048) throw new SsmError('ValidationException', `1 validation error detected: Value '${name}' at 'name' failed to satisfy constraint: Member must have length between 1 and 2048`);
    if (typeof value !== 'string' || value.length === 0) throw new SsmError('ValidationException', "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1");
    const history = parameters.get(name) ?? [];
    const latest = history.at(-1);
    if (latest && !settings.overwrite) throw new SsmError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    const requested = settings.tier === 'Intelligent-Tiering' ? undefined : settings.tier;
    if (requested !== undefined && requested !== 'Standard' && requested !== 'Advanced') throw new SsmError('ValidationException', `Tier must be Standard, Advanced or Intelligent-Tiering, got ${requested}`);
    if (latest?.tier === 'Advanced' && requested === 'Standard') throw new SsmError('ValidationException', 'This parameter uses the advanced-parameter tier. You can\'t downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.');
    const tier: Tier = (requested as Tier | undefined) ?? (settings.tier === 'Intelligent-Tiering' && value.length > VALUE_LIMITS.Standard ? 'Advanced' : (latest?.tier ?? 'Standard'));
    if (value.length > VALUE_LIMITS[tier]) {
      throw new SsmError('ValidationException', `${tier} tier parameters support a maximum parameter value of ${VALUE_LIMITS[tier]} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.`);
    }
    const version = (latest?.version ?? 0) + 1;
    history.push({ value, version, type: settings.type ?? latest?.type ?? 'String', tier, ...(settings.description ?? latest?.description ? { description: settings.description ?? latest?.description } : {}), modifiedAt: new Date().toISOString() });
    parameters.set(name, history.slice(-MAX_VERSIONS));
    persist();
    return { version, tier };
  };

  const operations: Record<string, (body: Record<string, unknown>) => unknown> = {
    GetParameter(body) {
      const name = stringField(body, 'Name');
      const p = current(name);
      if (!p) throw new SsmError('ParameterNotFound', `Parameter ${name} not found.`);
      return { Parameter: shape(name, p) };
    },
    GetParameters(body) {
      const names = Array.isArray(body.Names) ? body.Names.map(String) : [];
      const found = names.filter((name) => current(name));
      return { Parameters: found.map((name) => shape(name, current(name)!)), InvalidParameters: names.filter((name) => !current(name)) };
    },
    PutParameter(body) {
      const name = stringField(body, 'Name');
      const out = put(name, stringField(body, 'Value'), {
        type: optionalString(body, 'Type'),
        tier: optionalString(body, 'Tier'),
        description: optionalString(body, 'Description'),
        overwrite: body.Overwrite === true,
      });
      return { Version: out.version, Tier: out.tier };
    },
    GetParameterHistory(body) {
      const name = stringField(body, 'Name');
      const history = parameters.get(name);
      if (!history?.length) throw new SsmError('ParameterNotFound', `Parameter ${name} not found.`);
      const max = Math.min(50, Math.max(1, Number(body.MaxResults ?? 50) || 50));
      const start = Number(body.NextToken ?? 0) || 0;
      const page = history.slice(start, start + max);
      return {
        Parameters: page.map((p) => ({ ...shape(name, p), Tier: p.tier, LastModifiedUser: `arn:aws:iam::${LOCAL_ACCOUNT_ID}:user/local`, ...(p.description ? { Description: p.description } : {}), Labels: [], Policies: [] })),
        ...(start + max < history.length ? { NextToken: String(start + max) } : {}),
      };
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const [prefix, operation] = target.split('.');
    try {
      const bytes = await readRequestBody(req);
      const fn = req.method === 'POST' && prefix === 'AmazonSSM' && operation ? operations[operation] : undefined;
      if (!fn) throw new SsmError('UnknownOperationException', `Unknown operation ${target || '(no X-Amz-Target)'}`);
      send(res, 200, fn(parseAwsJsonBody(bytes, (reason) => new SsmError('SerializationException', reason))));
    } catch (err) {
      const e = err instanceof SsmError ? err : new SsmError('InternalServerError', (err as Error).message, 500);
      if (e.status >= 500) options.log?.error('SSM endpoint error', { operation: target, error: e.message });
      send(res, e.status, { __type: e.type, message: e.message }, e.type);
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  const port = await listen(server, options.port ?? 0, host);
  return {
    endpoint: endpointOf(port, host),
    port,
    get: (name) => current(name),
    put: (name, value, settings = {}) => put(name, value, { ...settings, overwrite: true }).version,
    close: () => closeServer(server),
  };
}

function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string') throw new SsmError('ValidationException', `1 validation error detected: Value null at '${field.toLowerCase()}' failed to satisfy constraint: Member must not be null`);
  return value;
}

function optionalString(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  return typeof value === 'string' ? value : undefined;
}

function send(res: ServerResponse, status: number, body: unknown, errorType?: string): void {
  sendAwsJson(res, status, body, '1.1', errorType);
}
