/**
 * Review step: a multimodal LLM on Bedrock looks at a borderline image and answers through a
 * forced tool call (temperature 0). The reading of its answer is in lib/review-answer.ts; this
 * handler only fetches, downscales and calls.
 */
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { bedrock } from './clients.ts';
import { objects } from './stores.ts';
import { ModerationError } from './lib/errors.ts';
import { framesAsJpeg } from './lib/frames.ts';
import { callAws } from './errors.ts';
import { flushMetrics, logger, metrics, MetricUnit } from './observability.ts';
import { handlerConfig } from './lib/config.ts';
import { toReviewBytes, UnreadableImageError } from './lib/image.ts';
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
    const images = await imagesToReview(state);

    const response = await callAws('Bedrock', () =>
      bedrock().send(
        new ConverseCommand({
          modelId,
          system: [{ text: REVIEW_SYSTEM_PROMPT }],
          messages: [
            {
              role: 'user',
              content: [
                // An animation: the frames Rekognition flagged, not its first frame (invariant 7).
                ...images.map((bytes) => ({ image: { format: 'jpeg' as const, source: { bytes } } })),
                { text: reviewQuestion(state.detection?.flagged ?? [], state.detection?.policyName ?? currentPolicy().name) },
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

/** At most this many frames go to the model in one message (Converse takes up to 20 images). */
const MAX_REVIEW_FRAMES = 5;

/**
 * What the model looks at: the image, or for an animation or multi-page file the frames that were
 * flagged at review level (the worst ones first), so the answer is about the frames that matter.
 */
async function imagesToReview(state: ModerationState): Promise<Uint8Array[]> {
  const bytes = await objects().read(state.job);
  const flagged = state.detection?.frames?.flagged;
  if (!flagged?.length) return [(await toReviewBytes(bytes)).bytes];
  // More flagged frames than one message shows: a human decides (the Catch records REVIEW).
  if (flagged.length > MAX_REVIEW_FRAMES) throw new TooManyFlaggedFramesError(`${flagged.length} frames were flagged; contextual review looks at ${MAX_REVIEW_FRAMES} at most`);
  const frames = await framesAsJpeg(bytes, flagged);
  if (frames.size === 0) throw new UnreadableImageError('none of the flagged frames could be decoded for review');
  return [...frames.values()].map((frame) => frame.bytes);
}

/** An animation with more flagged frames than the model is shown at once: held for a person. */
export class TooManyFlaggedFramesError extends ModerationError {
  override name = 'TooManyFlaggedFrames';
}
