"""A tiny BERT (built from a config: nothing is downloaded) fine-tuned with the
Transformers `Trainer` on a synthetic task, tuned by Tunelab.

The Tunelab part is the callback (`callbacks=[tunelab]`, and `output_dir` in the trial's
checkpoint folder so that a paused trial resumes); the rest is plain Transformers. Under
Tunelab (`tunelab study create -f examples/integrations/transformers.yaml`) the
hyperparameters arrive as flags; on its own, `--study ID` asks that study for a trial.
"""

from __future__ import annotations

import argparse
import tempfile

import torch
import transformers

from tunelab.integrations.transformers import TunelabCallback


def dataset(n: int, seed: int) -> list[dict[str, object]]:
    """Sequences of 12 tokens; the label says whether token 7 occurs in them."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 40, (n, 12), generator=generator)
    mask = torch.ones(12, dtype=torch.long)
    return [
        {"input_ids": row, "attention_mask": mask, "labels": int(bool((row == 7).any()))}
        for row in ids
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--hidden_size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--study", type=int, default=None, help="outside Tunelab: a study id")
    parser.add_argument("--url", default=None, help="outside Tunelab: the server (TUNELAB_URL)")
    args = parser.parse_args()

    tunelab = TunelabCallback(study=args.study, url=args.url, step="epoch")
    params = {**vars(args), **tunelab.params}  # the trial's values win
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=int(params["hidden_size"]),
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * int(params["hidden_size"]),
        max_position_embeddings=16,
        num_labels=2,
    )
    output_dir = str(tunelab.checkpoint_dir or tempfile.mkdtemp())
    training = transformers.TrainingArguments(
        output_dir=output_dir,
        learning_rate=params["learning_rate"],
        num_train_epochs=tunelab.budget or params["epochs"],
        per_device_train_batch_size=32,
        eval_strategy="epoch",
        save_strategy="no",  # the callback saves when the study pauses the trial
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=training,
        train_dataset=dataset(512, 1),
        eval_dataset=dataset(128, 2),
        callbacks=[tunelab],
    )
    trainer.train(resume_from_checkpoint=tunelab.resume_checkpoint)
    print(f"trial {tunelab.trial_id}: {tunelab.decision} at step {trainer.state.global_step}")


if __name__ == "__main__":
    main()
