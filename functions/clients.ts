/**
 * AWS SDK clients, created once per container and reused across invocations. Locally only the
 * endpoints differ (AWS_ENDPOINT_URL_<SERVICE>, honoured by SDK v3) and path-style S3; the code
 * that uses them does not know where it runs.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { RekognitionClient } from '@aws-sdk/client-rekognition';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SFNClient } from '@aws-sdk/client-sfn';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { SSMClient } from '@aws-sdk/client-ssm';
import { handlerConfig } from './lib/config.ts';

let s3Client: S3Client | undefined;
let rekognitionClient: RekognitionClient | undefined;
let bedrockClient: BedrockRuntimeClient | undefined;
let documentClient: DynamoDBDocumentClient | undefined;
let sqsClient: SQSClient | undefined;
let sfnClient: SFNClient | undefined;
let eventBridgeClient: EventBridgeClient | undefined;
let ssmClient: SSMClient | undefined;

export function s3(): S3Client {
  // WHEN_REQUIRED: no flexible checksums on uploads; emulators (s3rver) store streamed bodies with them corrupted.
  s3Client ??= new S3Client({ forcePathStyle: handlerConfig().s3ForcePathStyle, requestChecksumCalculation: 'WHEN_REQUIRED' });
  return s3Client;
}

export function rekognition(): RekognitionClient {
  // Retries belong to the state machine (visible, with backoff and jitter), not hidden inside the SDK.
  rekognitionClient ??= new RekognitionClient({ maxAttempts: 1 });
  return rekognitionClient;
}

/**
 * The analyses (DetectLabels, DetectFaces, DetectText; functions/analysis.ts) keep the SDK's own
 * retries (throttling and 5xx, backoff with jitter): one that still fails is recorded as missing
 * instead of failing the step, so the state machine's Retry would never see it.
 */
let analysisClient: RekognitionClient | undefined;
export function analysisRekognition(): RekognitionClient {
  analysisClient ??= new RekognitionClient({ maxAttempts: 3 });
  return analysisClient;
}

export function bedrock(): BedrockRuntimeClient {
  bedrockClient ??= new BedrockRuntimeClient({ maxAttempts: 1, requestHandler: { requestTimeout: 45_000 } });
  return bedrockClient;
}

export function decisions(): DynamoDBDocumentClient {
  documentClient ??= DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  });
  return documentClient;
}

export function sqs(): SQSClient {
  sqsClient ??= new SQSClient({});
  return sqsClient;
}

export function stepFunctions(): SFNClient {
  // StartSyncExecution prefixes the host with `sync-`; an explicit local endpoint has no such host.
  sfnClient ??= new SFNClient({ disableHostPrefix: Boolean(process.env.AWS_ENDPOINT_URL_SFN || process.env.AWS_ENDPOINT_URL) });
  return sfnClient;
}

export function eventBridge(): EventBridgeClient {
  // The SDK's retries (throttling, 5xx) first; what still fails is retried by the stream's event source mapping.
  eventBridgeClient ??= new EventBridgeClient({});
  return eventBridgeClient;
}

export function ssm(): SSMClient {
  // The live policy (functions/policy-source.ts): a failed read falls back to the last good copy, so
  // a short timeout beats waiting out an unreachable endpoint.
  ssmClient ??= new SSMClient({ maxAttempts: 2, requestHandler: { requestTimeout: 3_000, connectionTimeout: 2_000 } });
  return ssmClient;
}
