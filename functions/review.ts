/**
 * Review step: a multimodal LLM on Bedrock looks at a borderline image and answers through a
 * forced tool call (temperature 0). The reading of its answer is in lib/review-answer.ts; this
 * handler only fetches, downscales and calls.
 */
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { bedrock, s3 } from './clients.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig } from './lib/config.ts';
import { toReviewBytes } from './lib/image.ts';
import { currentPolicy } from './policy-source.ts';
import {
  interpretReviewAnswer,
  REVIEW_SYSTEM_PROMPT,
  REVIEW_TOOL_NAME,
  REVIEW_TOOL_SCHEMA,
  reviewQuestion,
  type ConverseAnswer,
} from './lib/review-answer.ts';
import type { ModerationState, Review } from './lib/types.ts';

export const handler = async (state: ModerationState): Promise<ModerationState> => {
  const { job } = state;
  const started = Date.now();
  const modelId = handlerConfig().reviewModelId;
  try {
    const object = await callAws('S3', () => s3().send(new GetObjectCommand({ Bucket: job.bucket, Key: job.key, VersionId: job.versionId })));
    const image = await toReviewBytes(Buffer.from(await object.Body!.transformToByteArray()));

    const response = await callAws('Bedrock', () =>
      bedrock().send(
        new ConverseCommand({
          modelId,
          system: [{ text: REVIEW_SYSTEM_PROMPT }],
          messages: [
            {
              role: 'user',
              content: [
                { image: { format: 'jpeg', source: { bytes: image.bytes } } },
                { text: reviewQuestion(state.detection?.flagged ?? [], currentPolicy().name) },
              ],
            },
          ],
          toolConfig: {
            tools: [{ toolSpec: { name: REVIEW_TOOL_NAME, description: 'Record the moderation decision for the image.', inputSchema: { json: REVIEW_TOOL_SCHEMA as never } } }],
            toolChoice: { tool: { name: REVIEW_TOOL_NAME } },
          },
          inferenceConfig: { temperature: 0, maxTokens: 512 },
        }),
      ),
    );

    const answer = interpretReviewAnswer({
      stopReason: response.stopReason,
      content: (response.output?.message?.content ?? []) as ConverseAnswer['content'],
    });
    const review: Review = {
      ...answer,
      modelId,
      inputTokens: response.usage?.inputTokens,
      outputTokens: response.usage?.outputTokens,
      durationMs: Date.now() - started,
    };
    metrics.addMetric(`Review${review.decision}`, MetricUnit.Count, 1);
    metrics.addMetric('ReviewInputTokens', MetricUnit.Count, review.inputTokens ?? 0);
    logger.info('reviewed', { jobId: job.jobId, decision: review.decision, reason: review.reason });
    return { ...state, review };
  } finally {
    flushMetrics();
  }
};
