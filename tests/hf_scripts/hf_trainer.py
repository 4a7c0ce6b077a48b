"""A HuggingFace Trainer run as its docs write one, on a tiny BERT built from a config (no
download) and a synthetic dataset. Prints, on its last line, the JSON of the Trainer's own
log history, the final evaluation and where it saved the model."""

import argparse
import json

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()


class Synthetic(torch.utils.data.Dataset):
    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(5, 100, (n, 16), generator=g)
        self.labels = (self.ids[:, 0] > 50).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(16, dtype=torch.long), "labels": self.labels[i]}


torch.manual_seed(0)
config = BertConfig(
    vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, num_labels=2
)
model = BertForSequenceClassification(config)
training_args = TrainingArguments(
    output_dir=args.out,
    num_train_epochs=args.epochs,
    per_device_train_batch_size=16,
    per_device_eval_batch_size=32,
    learning_rate=5e-3,
    lr_scheduler_type="linear",
    eval_strategy="epoch",
    save_strategy="epoch",
    logging_strategy="epoch",
    report_to="none",
    use_cpu=True,
    seed=0,
)
trainer = Trainer(model=model, args=training_args, train_dataset=Synthetic(96, 1), eval_dataset=Synthetic(32, 2))
trainer.train()
trainer.save_model(args.out + "/final")
metrics = trainer.evaluate()
print(json.dumps({"log_history": trainer.state.log_history, "final": metrics, "saved": args.out + "/final"}))
