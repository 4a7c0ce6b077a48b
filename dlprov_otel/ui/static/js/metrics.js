// Pure functions over metrics and runs (no DOM): which way a metric improves, the best of
// several values, smoothing, aligning runs of different lengths, and the run filter language.

const LOWER = new Set(["loss", "error", "err", "errors", "mae", "mse", "rmse", "msle", "mape", "smape", "perplexity",
  "ppl", "crossentropy", "nll", "wer", "cer", "time", "duration", "latency", "seconds", "elapsed", "distance", "fid"]);
const HIGHER = new Set(["accuracy", "acc", "auc", "roc", "f1", "fscore", "precision", "recall", "iou", "miou", "dice",
  "bleu", "rouge", "map", "r2", "top1", "top5", "sensitivity", "specificity", "kappa", "mcc", "ap"]);

/**
 * "min" when lower values of `name` are better (loss, error, mae, mse, perplexity, time...),
 * "max" when higher are (accuracy, auc, f1, precision, recall...), null when it is not known.
 * Names are split into words at anything not a letter or digit: "val_loss", "final val_mae",
 * "test accuracy", "mean_squared_error", "top_5_accuracy".
 */
export function metricGoal(name) {
  const words = String(name || "").toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);
  const bare = words.map((w) => w.replace(/\d+$/, "")); // rouge1, f1 stays (f), bleu4
  if (words.some((w) => LOWER.has(w)) || bare.some((w) => LOWER.has(w))) return "min";
  if (words.some((w) => HIGHER.has(w)) || bare.some((w) => HIGHER.has(w))) return "max";
  return null;
}

/** The index of the best of `values` for metric `name` (null when unknown or no number). */
export function bestIndex(name, values) {
  const goal = metricGoal(name);
  if (!goal) return null;
  let best = null;
  values.forEach((v, i) => {
    if (typeof v !== "number" || !Number.isFinite(v)) return;
    if (best === null || (goal === "min" ? v < values[best] : v > values[best])) best = i;
  });
  return best;
}

/**
 * Exponential moving average of [[x, y], ...] with `weight` in [0, 1) (0: unchanged),
 * bias-corrected as TensorBoard does so the first points are not pulled toward 0.
 */
export function smooth(points, weight) {
  if (!(weight > 0)) return points;
  let acc = 0, n = 0;
  return points.map(([x, y]) => {
    if (typeof y !== "number" || !Number.isFinite(y)) return [x, y];
    acc = acc * weight + (1 - weight) * y;
    n += 1;
    return [x, acc / (1 - weight ** n)];
  });
}

/**
 * Put runs of different lengths on one x axis. rows: per run, its epoch rows ({epoch, ...});
 * mode "epoch" (the epoch number), "progress" (percent of the run's own epochs, so runs of 4
 * and 40 epochs end together) or "time" (seconds since the run started, `t0` ms per run).
 * Returns, per run, the x of each row (null when unknown).
 */
export function alignX(rows, mode, t0s = []) {
  return rows.map((rs, k) => {
    if (mode === "progress") {
      const last = rs.length - 1;
      return rs.map((r, i) => (last > 0 ? (100 * i) / last : 100));
    }
    if (mode === "time") {
      return rs.map((r) => {
        const t = r._t instanceof Date ? r._t.getTime() : null;
        return t !== null && Number.isFinite(t0s[k]) ? (t - t0s[k]) / 1000 : null;
      });
    }
    return rs.map((r, i) => (typeof r.epoch === "number" ? r.epoch : i));
  });
}

// --- the filter language of the executions list ------------------------------------------------
const ALIASES = { lr: "learning_rate", acc: "accuracy", val_acc: "val_accuracy", bs: "batch_size", epochs_planned: "num_epochs" };
const OPS = ["<=", ">=", "!=", "==", "=", "<", ">", "~"];

/**
 * Parse a filter: words (every one must occur in the run's text) and comparisons
 * `name OP value` with OP one of < <= > >= = == != ~ (contains), e.g. `accuracy>0.9 lr<0.01 adam`.
 * Returns {terms: [{word} | {key, op, value, number}], text}.
 */
export function parseFilter(text) {
  const norm = String(text || "").replace(/\s*(<=|>=|!=|==|=|<|>|~)\s*/g, "$1").trim();
  const terms = [];
  for (const tok of norm.split(/\s+/).filter(Boolean)) {
    const m = /^([A-Za-z_][\w.]*)(<=|>=|!=|==|=|<|>|~)(.+)$/.exec(tok);
    if (m && OPS.includes(m[2])) {
      const key = m[1].toLowerCase();
      const raw = m[3].replace(/^["']|["']$/g, "");
      const number = raw !== "" && Number.isFinite(Number(raw)) ? Number(raw) : null;
      terms.push({ key: ALIASES[key] || key, op: m[2], value: raw, number });
    } else {
      terms.push({ word: tok.toLowerCase() });
    }
  }
  return { terms, text: norm };
}

/** The value of field `key` in a run's fields (a plain object of name -> value); undefined if absent. */
export function fieldValue(fields, key) {
  if (key in fields) return fields[key];
  const dotted = key.replace(/^test_/, "test.");
  if (dotted in fields) return fields[dotted];
  return undefined;
}

function compare(v, term) {
  if (v === undefined || v === null) return false;
  if (term.op === "~") return String(v).toLowerCase().includes(term.value.toLowerCase());
  if (typeof v === "number" && term.number !== null) {
    switch (term.op) {
      case "<": return v < term.number;
      case "<=": return v <= term.number;
      case ">": return v > term.number;
      case ">=": return v >= term.number;
      case "!=": return v !== term.number;
      default: return v === term.number;
    }
  }
  const a = String(v).toLowerCase(), b = term.value.toLowerCase();
  switch (term.op) {
    case "=": case "==": return a === b;
    case "!=": return a !== b;
    case "<": return a < b;
    case "<=": return a <= b;
    case ">": return a > b;
    default: return a >= b;
  }
}

/** Does a run (its fields, and its text for the words) pass every term of a parsed filter? */
export function matchFilter(parsed, fields, text) {
  const hay = String(text || "").toLowerCase();
  return parsed.terms.every((t) => (t.word !== undefined ? hay.includes(t.word) : compare(fieldValue(fields, t.key), t)));
}

/** Names in `parsed` that no run has (to say so rather than show an empty list silently). */
export function unknownFields(parsed, allFields) {
  return parsed.terms.filter((t) => t.key !== undefined && !allFields.some((f) => fieldValue(f, t.key) !== undefined))
    .map((t) => t.key);
}
