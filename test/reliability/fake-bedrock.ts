/**
 * A fake Amazon Bedrock Runtime speaking the Converse REST API (POST /model/{modelId}/converse, JSON
 * in and out, errors as `x-amzn-ErrorType` + `{"message"}`), for the review handler's unchanged
 * BedrockRuntimeClient (AWS_ENDPOINT_URL_BEDROCK_RUNTIME points here). The SDK's Bedrock Runtime
 * client speaks HTTP/2 (cleartext, prior knowledge, against an http:// endpoint), so this does too.
 * What it answers is scripted per image: the script gets the colour of the image the handler sent
 * (the downscaled JPEG) and the request.
 */
import { createServer, type Http2ServerRequest, type Http2ServerResponse, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import sharp from 'sharp';

export interface ConverseRequestBody {
  system?: Array<{ text?: string }>;
  messages?: Array<{ role: string; content: Array<{ text?: string; image?: { format?: string; source?: { bytes?: string } } }> }>;
  toolConfig?: { tools?: unknown[]; toolChoice?: unknown };
  inferenceConfig?: { temperature?: number; maxTokens?: number };
}

export type ContentBlock = { text: string } | { toolUse: { toolUseId?: string; name: string; input: unknown } };

/** What the fake answers: a Converse reply, an error, silence (a timeout), or a dropped connection. */
export type FakeReply =
  | { kind: 'reply'; content: ContentBlock[]; stopReason?: string }
  | { kind: 'error'; type: string; status: number; message?: string }
  | { kind: 'hang' }
  | { kind: 'reset' };

export interface ConverseCall {
  modelId: string;
  /** Mean RGB of the image sent (0-255). */
  colour: { r: number; g: number; b: number };
  imageBytes: number;
  body: ConverseRequestBody;
  reply: FakeReply['kind'];
}

export type ConverseScript = (request: { modelId: string; colour: ConverseCall['colour']; body: ConverseRequestBody; attempt: number }) => FakeReply;

export interface FakeBedrock {
  endpoint: string;
  calls: ConverseCall[];
  close(): Promise<void>;
}

export async function startFakeBedrock(script: ConverseScript): Promise<FakeBedrock> {
  const calls: ConverseCall[] = [];
  const attempts = new Map<string, number>();
  const sessions = new Set<ServerHttp2Session>();
  const server = createServer();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { message: String((err as Error).message) }, 'InternalServerException');
    });
  });

  async function handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const match = /^\/model\/([^/]+)\/converse$/.exec(req.url ?? '');
    if (req.method !== 'POST' || !match) return send(res, 404, { message: `unknown route ${req.method} ${req.url}` }, 'UnknownOperationException');
    const modelId = decodeURIComponent(match[1]!);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ConverseRequestBody;
    const image = body.messages?.[0]?.content.find((block) => block.image)?.image;
    if (!image?.source?.bytes) return send(res, 400, { message: 'the fake expects an image in the first message' }, 'ValidationException');
    const bytes = Buffer.from(image.source.bytes, 'base64');
    const { data } = await sharp(bytes).resize(1, 1, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const colour = { r: data[0]!, g: data[1]!, b: data[2]! };
    const id = `${colour.r},${colour.g},${colour.b}`;
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);
    const reply = script({ modelId, colour, body, attempt });
    calls.push({ modelId, colour, imageBytes: bytes.length, body, reply: reply.kind });
    switch (reply.kind) {
      case 'hang':
        return; // never answers; the client's request timeout ends it (close() drops the socket)
      case 'reset':
        req.stream.session?.destroy();
        return;
      case 'error':
        return send(res, reply.status, { message: reply.message ?? reply.type }, reply.type);
      case 'reply':
        return send(res, 200, {
          output: { message: { role: 'assistant', content: reply.content } },
          stopReason: reply.stopReason ?? (reply.content.some((block) => 'toolUse' in block) ? 'tool_use' : 'end_turn'),
          usage: { inputTokens: 1200, outputTokens: 60, totalTokens: 1260 },
          metrics: { latencyMs: 5 },
        });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res: Http2ServerResponse, status: number, body: unknown, errorType?: string): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(payload);
}

/** A tool answer the way Bedrock returns it (the toolUseId is the model's). */
export function toolUse(name: string, input: unknown): ContentBlock {
  return { toolUse: { toolUseId: `tooluse_${randomUUID().slice(0, 12)}`, name, input } };
}
