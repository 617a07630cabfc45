/**
 * How an @aws-sdk v3 client talks to the local stack. A module of its own (no emulator imports) so
 * the CLI can build clients for a running `serve` without loading the stack.
 */
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { SFNClientConfig } from '@aws-sdk/client-sfn';
import type { RekognitionClientConfig } from '@aws-sdk/client-rekognition';
import type { SSMClientConfig } from '@aws-sdk/client-ssm';

export const DUMMY_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' };

export interface LocalEndpoints {
  s3: string;
  sqs: string;
  dynamodb: string;
  stepfunctions: string;
  rekognition: string;
  /** The SSM Parameter Store endpoint (the live policy, local/ssm.ts); absent in a `serve.json` written before it existed. */
  ssm?: string;
}

/** Client configuration for @aws-sdk v3 clients against a local stack (or a `serve` described by its endpoints). */
export function localClientConfig(stack: { region: string; endpoints: LocalEndpoints }): {
  s3: S3ClientConfig;
  sqs: SQSClientConfig;
  dynamodb: DynamoDBClientConfig;
  stepfunctions: SFNClientConfig;
  rekognition: RekognitionClientConfig;
  ssm: SSMClientConfig;
} {
  const base = { region: stack.region, credentials: DUMMY_CREDENTIALS };
  return {
    // Path style (no bucket host names on 127.0.0.1) and no flexible checksums (s3rver stores streamed
    // bodies with them corrupted).
    s3: { ...base, endpoint: stack.endpoints.s3, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' },
    sqs: { ...base, endpoint: stack.endpoints.sqs },
    dynamodb: { ...base, endpoint: stack.endpoints.dynamodb },
    // StartSyncExecution would otherwise go to sync-127.0.0.1.
    stepfunctions: { ...base, endpoint: stack.endpoints.stepfunctions, disableHostPrefix: true },
    rekognition: { ...base, endpoint: stack.endpoints.rekognition },
    ssm: { ...base, ...(stack.endpoints.ssm ? { endpoint: stack.endpoints.ssm } : {}) },
  };
}
