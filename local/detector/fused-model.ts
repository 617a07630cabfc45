/**
 * nsfwjs's MobileNetV2 run as a short list of fused tfjs-core ops instead of through tfjs-layers
 * (docs/local-runtime.md, "The local detector"). Same weights, same input, the same answer within
 * float32 rounding (test/local/detector-fused.test.ts compares both on the samples and on generated
 * scenes), in well under half the CPU time on the WASM backend:
 *
 * - every BatchNormalization that follows a convolution is folded into that convolution's kernel
 *   and bias (scale = gamma / sqrt(variance + epsilon); kernel × scale; (bias − mean) × scale + beta):
 *   tfjs-layers runs it as a separate FusedBatchNorm kernel, the slowest op of the model on WASM;
 * - a ReLU(max_value 6) after it becomes the convolution's fused `relu6` activation (tfjs-layers runs
 *   a Relu and a ClipByValue);
 * - a ZeroPadding2D before a `valid` convolution becomes that convolution's explicit padding (the
 *   same zeros, no PadV2 copy of the activations);
 * - Dropout is the identity at inference; Dense is a fused matMul with its bias and activation.
 *
 * The graph is read from the Keras functional config (inbound nodes), so the model is not spelled
 * out here; a layer class this compiler does not know is refused (UnsupportedLayerError) rather
 * than guessed.
 */
import type * as TfCore from '@tensorflow/tfjs-core';

type Core = typeof TfCore;
type Tensor = TfCore.Tensor;
type Tensor4D = TfCore.Tensor4D;
type NamedTensorMap = Record<string, Tensor>;
type FusedActivation = 'linear' | 'relu' | 'relu6' | 'elu' | 'sigmoid';
type Padding = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];

/** One layer of a Keras functional model's config (model.json's modelTopology.model_config.config.layers). */
export interface KerasLayer {
  class_name: string;
  config: Record<string, unknown> & { name: string };
  /** [[[inbound layer name, node index, tensor index, kwargs], ...]] */
  inbound_nodes: Array<Array<[string, number, number, unknown?]>>;
}

export interface KerasFunctionalConfig {
  layers: KerasLayer[];
  input_layers: Array<[string, number, number]>;
  output_layers: Array<[string, number, number]>;
}

export class UnsupportedLayerError extends Error {
  override name = 'UnsupportedLayerError';
}

export interface CompiledModel {
  /** Fused steps run per prediction (for tests and curiosity). */
  readonly steps: number;
  /** Runs the model on a batch [n, height, width, channels]; the caller disposes the result. */
  predict(input: Tensor4D): Tensor;
  /** Frees the folded weights. */
  dispose(): void;
}

interface Step {
  output: string;
  inputs: string[];
  /** The weight tensors `run` uses. */
  weights?: Tensor[];
  run(inputs: Tensor[]): Tensor;
}

const num = (value: unknown): number => Number(value);
const pair = (value: unknown): [number, number] => {
  const v = value as number[] | number;
  return Array.isArray(v) ? [v[0]!, v[1]!] : [v, v];
};

/**
 * Compiles a Keras functional model (config + its weights by name, e.g. `Conv1/kernel`) into fused
 * tfjs-core ops. Takes ownership of `weights`: those folded into others are disposed now, the rest
 * by the compiled model's dispose().
 */
export function compileKerasModel(tf: Core, config: KerasFunctionalConfig, weights: NamedTensorMap): CompiledModel {
  const layers = new Map(config.layers.map((layer) => [layer.config.name, layer]));
  const consumers = new Map<string, string[]>();
  for (const layer of config.layers) {
    if (layer.inbound_nodes.length > 1) throw new UnsupportedLayerError(`layer ${layer.config.name} is called more than once (shared layers are not supported)`);
    for (const [source] of layer.inbound_nodes[0] ?? []) consumers.set(source, [...(consumers.get(source) ?? []), layer.config.name]);
  }
  /** The layer that alone consumes `name`'s output, if exactly one does. */
  const soleConsumer = (name: string): KerasLayer | undefined => {
    const list = consumers.get(name) ?? [];
    return list.length === 1 ? layers.get(list[0]!) : undefined;
  };
  const weight = (name: string): Tensor => {
    const tensor = weights[name];
    if (!tensor) throw new UnsupportedLayerError(`the weights have no ${name}`);
    return tensor;
  };

  const steps: Step[] = [];
  /** Layers whose output is another layer's (folded or skipped). */
  const alias = new Map<string, string>();
  const resolve = (name: string): string => alias.get(name) ?? name;
  /** Layers folded into an earlier step. */
  const folded = new Set<string>();
  /** ZeroPadding2D folded into the convolution that consumes it: the convolution's explicit padding. */
  const padding = new Map<string, Padding>();
  const owned: Tensor[] = [];

  for (const layer of config.layers) {
    const { name } = layer.config;
    if (folded.has(name)) continue;
    const c = layer.config;
    const inputs = (layer.inbound_nodes[0] ?? []).map(([source]) => resolve(source));
    switch (layer.class_name) {
      case 'InputLayer':
        break;
      case 'Dropout':
        alias.set(name, inputs[0]!);
        break;
      case 'ZeroPadding2D': {
        if (c.data_format && c.data_format !== 'channels_last') throw new UnsupportedLayerError(`${name}: data_format ${String(c.data_format)}`);
        const [[top, bottom], [left, right]] = zeroPadding(c.padding);
        const explicit: Padding = [[0, 0], [top!, bottom!], [left!, right!], [0, 0]];
        const next = soleConsumer(name);
        if (next && (next.class_name === 'Conv2D' || next.class_name === 'DepthwiseConv2D') && next.config.padding === 'valid') {
          padding.set(next.config.name, explicit);
          alias.set(name, inputs[0]!);
        } else {
          steps.push({ output: name, inputs, run: ([x]) => tf.pad(x!, explicit) });
        }
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        if (c.data_format && c.data_format !== 'channels_last') throw new UnsupportedLayerError(`${name}: data_format ${String(c.data_format)}`);
        const depthwise = layer.class_name === 'DepthwiseConv2D';
        const kernel = weight(`${name}/${depthwise ? 'depthwise_kernel' : 'kernel'}`);
        const bias = c.use_bias ? weight(`${name}/bias`) : undefined;
        let activation = c.activation === undefined || c.activation === 'linear' ? 'linear' : String(c.activation);
        let output = name;
        let filter = kernel;
        let fusedBias = bias;
        const norm = soleConsumer(name);
        if (norm?.class_name === 'BatchNormalization' && activation === 'linear' && isLastAxis(norm.config.axis)) {
          ({ filter, bias: fusedBias } = foldBatchNorm(tf, kernel, bias, depthwise, norm, weight));
          owned.push(filter, fusedBias);
          folded.add(norm.config.name);
          output = norm.config.name;
          const relu = soleConsumer(output);
          if (relu?.class_name === 'ReLU' && num(relu.config.max_value) === 6 && !num(relu.config.negative_slope ?? 0) && !num(relu.config.threshold ?? 0)) {
            activation = 'relu6';
            folded.add(relu.config.name);
            output = relu.config.name;
          }
        }
        if (!['linear', 'relu', 'relu6', 'elu', 'sigmoid'].includes(activation)) throw new UnsupportedLayerError(`${name}: activation ${activation}`);
        const strides = pair(c.strides ?? 1);
        const dilations = pair(c.dilation_rate ?? 1);
        const pad: Padding = padding.get(name) ?? (c.padding === 'same' ? 'same' : 'valid');
        const fused = activation as FusedActivation;
        steps.push({
          output,
          inputs,
          weights: [filter, ...(fusedBias ? [fusedBias] : [])],
          run: ([x]) =>
            depthwise
              ? // Explicit padding works in the kernels (computeConv2DInfo) though this op's type only names 'valid' | 'same' | number.
                tf.fused.depthwiseConv2d({ x: x as Tensor4D, filter: filter as Tensor4D, strides, pad: pad as 'valid', dilations, bias: fusedBias, activation: fused })
              : tf.fused.conv2d({ x: x as Tensor4D, filter: filter as Tensor4D, strides, pad, dilations, bias: fusedBias, activation: fused }),
        });
        if (output !== name) alias.set(name, output);
        if (output !== name && norm) alias.set(norm.config.name, output);
        break;
      }
      case 'ReLU': {
        const max = c.max_value === null || c.max_value === undefined ? Infinity : num(c.max_value);
        if (num(c.negative_slope ?? 0) || num(c.threshold ?? 0)) throw new UnsupportedLayerError(`${name}: ReLU with a negative slope or a threshold`);
        steps.push({ output: name, inputs, run: ([x]) => (max === Infinity ? tf.relu(x!) : tf.clipByValue(tf.relu(x!), 0, max)) });
        break;
      }
      case 'Add':
        steps.push({ output: name, inputs, run: (xs) => (xs.length === 2 ? tf.add(xs[0]!, xs[1]!) : tf.addN(xs)) });
        break;
      case 'AveragePooling2D': {
        const pool = pair(c.pool_size);
        const strides = pair(c.strides ?? c.pool_size);
        const pad = c.padding === 'same' ? 'same' : 'valid';
        steps.push({ output: name, inputs, run: ([x]) => tf.avgPool(x as Tensor4D, pool, strides, pad) });
        break;
      }
      case 'Flatten':
        steps.push({ output: name, inputs, run: ([x]) => tf.reshape(x!, [x!.shape[0]!, -1]) });
        break;
      case 'Dense': {
        const kernel = weight(`${name}/kernel`);
        const bias = c.use_bias === false ? undefined : weight(`${name}/bias`);
        const activation = c.activation === undefined ? 'linear' : String(c.activation);
        if (activation === 'softmax') {
          steps.push({ output: name, inputs, weights: [kernel, ...(bias ? [bias] : [])], run: ([x]) => tf.softmax(tf.fused.matMul({ a: x as TfCore.Tensor2D, b: kernel as TfCore.Tensor2D, bias })) });
        } else {
          if (!['linear', 'relu', 'relu6', 'elu', 'sigmoid'].includes(activation)) throw new UnsupportedLayerError(`${name}: activation ${activation}`);
          const fused = activation as FusedActivation;
          steps.push({ output: name, inputs, weights: [kernel, ...(bias ? [bias] : [])], run: ([x]) => tf.fused.matMul({ a: x as TfCore.Tensor2D, b: kernel as TfCore.Tensor2D, bias, activation: fused }) });
        }
        break;
      }
      default:
        throw new UnsupportedLayerError(`layer ${name} of class ${layer.class_name} is not supported by the fused model`);
    }
  }

  if (config.input_layers.length !== 1 || config.output_layers.length !== 1) throw new UnsupportedLayerError('the model must have one input and one output');
  const inputName = config.input_layers[0]![0];
  const outputName = resolve(config.output_layers[0]![0]);

  // The weights folded into new tensors are not used any more.
  const used = new Set<Tensor>(owned);
  for (const step of steps) for (const tensor of step.weights ?? []) used.add(tensor);
  for (const tensor of Object.values(weights)) if (!used.has(tensor)) tensor.dispose();

  return {
    steps: steps.length,
    predict(input: Tensor4D): Tensor {
      return tf.tidy(() => {
        const values = new Map<string, Tensor>([[inputName, input]]);
        for (const step of steps) {
          const args = step.inputs.map((name) => {
            const value = values.get(name);
            if (!value) throw new UnsupportedLayerError(`no value for ${name} when computing ${step.output}`);
            return value;
          });
          values.set(step.output, step.run(args));
        }
        const output = values.get(outputName);
        if (!output) throw new UnsupportedLayerError(`the model's output ${outputName} was not computed`);
        return output;
      });
    },
    dispose(): void {
      for (const tensor of used) tensor.dispose();
    },
  };
}

/** Keras ZeroPadding2D's `padding`: an int, (rows, cols) or ((top, bottom), (left, right)). */
function zeroPadding(value: unknown): [[number, number], [number, number]] {
  if (typeof value === 'number') return [[value, value], [value, value]];
  const [rows, cols] = value as [unknown, unknown];
  return [pair(rows), pair(cols)];
}

function isLastAxis(axis: unknown): boolean {
  return axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3));
}

/**
 * Folds an inference-mode BatchNormalization into the convolution before it, in float64:
 * y = gamma · (conv(x) + b − mean) / sqrt(variance + epsilon) + beta = conv'(x) + b'.
 * The output channel of a kernel element is its index modulo the output channels, for Conv2D
 * ([h, w, in, out]) and DepthwiseConv2D ([h, w, in, multiplier]: channel c·multiplier + m) alike.
 */
function foldBatchNorm(
  tf: Core,
  kernel: Tensor,
  bias: Tensor | undefined,
  depthwise: boolean,
  norm: KerasLayer,
  weight: (name: string) => Tensor,
): { filter: Tensor; bias: Tensor } {
  const n = norm.config.name;
  const [, , inChannels, last] = kernel.shape as [number, number, number, number];
  const channels = depthwise ? inChannels * last : last;
  const epsilon = num(norm.config.epsilon ?? 1e-3);
  const mean = weight(`${n}/moving_mean`).dataSync() as Float32Array;
  const variance = weight(`${n}/moving_variance`).dataSync() as Float32Array;
  const gamma = norm.config.scale === false ? new Float32Array(channels).fill(1) : (weight(`${n}/gamma`).dataSync() as Float32Array);
  const beta = norm.config.center === false ? new Float32Array(channels) : (weight(`${n}/beta`).dataSync() as Float32Array);
  if (kernel.rank !== 4 || mean.length !== channels) throw new UnsupportedLayerError(`${n}: ${mean.length} channels do not match the kernel ${kernel.shape.join('x')}`);
  const k = kernel.dataSync() as Float32Array;
  const scale = new Float64Array(mean.length);
  for (let o = 0; o < mean.length; o++) scale[o] = gamma[o]! / Math.sqrt(variance[o]! + epsilon);
  const filter = new Float32Array(k.length);
  for (let i = 0; i < k.length; i++) filter[i] = k[i]! * scale[i % mean.length]!;
  const b = bias ? (bias.dataSync() as Float32Array) : new Float32Array(mean.length);
  const folded = new Float32Array(mean.length);
  for (let o = 0; o < mean.length; o++) folded[o] = (b[o]! - mean[o]!) * scale[o]! + beta[o]!;
  return { filter: tf.tensor(filter, kernel.shape), bias: tf.tensor1d(folded) };
}
