/**
 * us-east-1 list prices (USD) this project uses, transcribed on 2026-11-25 from
 * ../shared/reference/aws-pricing.json, which names the source of each figure (official or
 * secondary). Verify against the AWS Pricing Calculator before budgeting.
 */
export const PRICES_AS_OF = '2026-11-25';

export const PRICES = {
  /** DetectModerationLabels, first 1M images a month (group 2 API); lower tiers above that. */
  rekognitionPerImageTiers: [
    { upTo: 1_000_000, perImage: 0.001 },
    { upTo: 5_000_000, perImage: 0.0008 },
    { upTo: 35_000_000, perImage: 0.0006 },
    { upTo: Infinity, perImage: 0.00025 },
  ],
  /** Per 1,000 tokens, input and output. */
  bedrock: {
    'amazon.nova-lite-v1:0': { input: 0.00006, output: 0.00024 },
    'amazon.nova-pro-v1:0': { input: 0.0008, output: 0.0032 },
    'anthropic.claude-sonnet-4-20250514-v1:0': { input: 0.003, output: 0.015 },
  } as Record<string, { input: number; output: number }>,
  stepFunctionsStandardPerTransition: 0.000025,
  stepFunctionsExpressPerRequest: 0.000001,
  stepFunctionsExpressPerGbSecond: 0.00001667,
  lambdaPerRequest: 0.0000002,
  lambdaArmPerGbSecond: 0.0000133334,
  sqsPerRequest: 0.0000004,
  dynamodbPerWriteUnit: 0.000000625,
  dynamodbPerReadUnit: 0.000000125,
  s3PutPerRequest: 0.000005,
  s3GetPerRequest: 0.0000004,
  cloudwatchLogsPerGb: 0.5,
} as const;

/** Bedrock price for a model id, also for cross-region inference profiles (`us.amazon.nova-lite-v1:0`). */
export function bedrockPrice(modelId: string): { input: number; output: number } | undefined {
  const bare = modelId.replace(/^(us|eu|apac|global)\./, '');
  return PRICES.bedrock[bare];
}

/**
 * The variable cost of one decision that the record can know: the Rekognition image (first tier)
 * and the LLM tokens. The per-request costs of the orchestration are in the `cost` model.
 */
export function estimateDecisionCostUsd(input: {
  rekognitionCalled: boolean;
  /** DetectLabels, DetectFaces, DetectText calls made (each billed as an image, like moderation). */
  analysisCalls?: number;
  review?: { modelId: string; inputTokens?: number; outputTokens?: number };
}): number {
  let cost = ((input.rekognitionCalled ? 1 : 0) + (input.analysisCalls ?? 0)) * PRICES.rekognitionPerImageTiers[0]!.perImage;
  if (input.review) {
    const price = bedrockPrice(input.review.modelId);
    if (price) cost += ((input.review.inputTokens ?? 0) * price.input + (input.review.outputTokens ?? 0) * price.output) / 1000;
  }
  return Math.round(cost * 1e8) / 1e8;
}
