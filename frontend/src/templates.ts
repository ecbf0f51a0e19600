// Study bodies to start from.

export interface Template {
  id: string;
  label: string;
  body: Record<string, unknown>;
}

export const TEMPLATES: Template[] = [
  {
    id: "llm-finetune",
    label: "LLM fine-tune (LoRA, ASHA on epochs)",
    body: {
      name: "llm fine-tune",
      objective: { metric: "eval_loss", direction: "minimize", aggregate: "best" },
      space: {
        learning_rate: { type: "float", low: 1e-5, high: 5e-4, scale: "log", role: "learning_rate" },
        per_device_batch_size: { type: "int", low: 4, high: 32, step: 4, role: "per_device_batch_size" },
        lora_rank: { type: "categorical", choices: [8, 16, 32, 64] },
        warmup_ratio: { type: "float", low: 0.0, high: 0.1 },
        weight_decay: { type: "float", low: 0.0, high: 0.1 },
      },
      strategy: { name: "asha", sampler: "tpe", seed: 1 },
      limits: { max_trials: 40, max_parallel_trials: 4, heartbeat_timeout_s: 600, max_retries: 1 },
      fidelity: { param: "epochs", min: 1, max: 9, reduction_factor: 3 },
      execution: {
        command: ["python", "finetune.py"],
        args: "flags",
        gpus_per_trial: 1,
        metric_definitions: [
          { name: "eval_loss", regex: "epoch (?P<step>\\d+).*eval_loss=(?P<value>[-+0-9.eE]+)" },
          { name: "train_loss", regex: "step (?P<step>\\d+).*loss=(?P<value>[-+0-9.eE]+)" },
        ],
      },
    },
  },
  {
    id: "image-classifier",
    label: "Image classifier (TPE + median stopping)",
    body: {
      name: "image classifier",
      objective: { metric: "val_acc", direction: "maximize", aggregate: "best" },
      space: {
        lr: { type: "float", low: 1e-4, high: 0.1, scale: "log", role: "learning_rate" },
        momentum: { type: "float", low: 0.8, high: 0.99 },
        batch_size: { type: "int", low: 32, high: 256, step: 32, role: "per_device_batch_size" },
        optimizer: { type: "categorical", choices: ["sgd", "adam"] },
        epochs: { type: "fixed", value: 20 },
      },
      strategy: { name: "tpe", seed: 7 },
      early_stopping: { rule: "median" },
      limits: { max_trials: 50, max_parallel_trials: 4 },
      execution: {
        command: ["python", "train.py"],
        args: "flags",
        gpus_per_trial: 1,
        metric_definitions: [{ name: "val_acc", regex: "epoch (?P<step>\\d+).*val_acc=(?P<value>[-+0-9.eE]+)" }],
      },
    },
  },
  {
    // The seed chapter's GPT-2 example: 1.5b (24 heads, hidden width 1536, batch 2) and
    // 30b (64 heads, 48 layers, hidden width 7168, batch 5); learning rate scaled with
    // the world size (5e-5 * 2 = 1e-4 at world size 32, 22 per device).
    id: "gpt2-sizes",
    label: "GPT-2 model sizes (seed chapter)",
    body: {
      name: "gpt-2 model sizes",
      objective: { metric: "val_loss", direction: "minimize" },
      space: {
        model_size: { type: "categorical", choices: ["1.5b", "30b"] },
        learning_rate: { type: "float", low: 5e-5, high: 1e-4, scale: "log", role: "learning_rate" },
        per_device_batch_size: { type: "categorical", choices: [2, 5, 22], role: "per_device_batch_size" },
        world_size: { type: "fixed", value: 32 },
      },
      strategy: { name: "grid", grid_points: 3, seed: 0 },
      limits: { max_trials: 18, max_parallel_trials: 2 },
      execution: {
        command: ["python", "smp-train-gpt-simple.py", "--model_size", "{model_size}", "--lr", "{learning_rate}"],
        args: "template",
        gpus_per_trial: 8,
        metric_definitions: [{ name: "val_loss", regex: "step (?P<step>\\d+).*val_loss[:=] ?(?P<value>[-+0-9.eE]+)" }],
      },
    },
  },
];
