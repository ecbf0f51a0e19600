// Several objectives and constraints as the API reads them (the study's `objectives`,
// `constraints`, `reference_point`; a trial's `values`, `constraints`, `feasible`,
// `is_pareto`), typed here so the study page works whatever the generated schema holds.
import type { StudyRead, TrialRead } from "../../api/client";
import { fmt } from "../../dom";

export interface ObjectiveSpec {
  metric: string;
  direction: string;
  aggregate?: string;
}

export interface ConstraintSpec {
  metric: string;
  op: string;
  value: number;
}

export interface TrialConstraint {
  metric: string;
  op: string;
  limit: number;
  value: number | null;
  violation: number | null;
}

export type MultiStudy = StudyRead & {
  objectives?: ObjectiveSpec[];
  constraints?: ConstraintSpec[];
  reference_point?: number[] | null;
};

export type MultiTrial = TrialRead & {
  values?: (number | null)[] | null;
  constraints?: TrialConstraint[];
  feasible?: boolean | null;
  is_pareto?: boolean;
};

export function objectivesOf(study: StudyRead): ObjectiveSpec[] {
  const many = (study as MultiStudy).objectives;
  return many && many.length ? many : [study.objective as ObjectiveSpec];
}

export function constraintsOf(study: StudyRead): ConstraintSpec[] {
  return (study as MultiStudy).constraints ?? [];
}

/** Whether the study has more than one objective (a Pareto front to draw). */
export function isMultiObjective(study: StudyRead): boolean {
  return objectivesOf(study).length > 1;
}

/** A constraint cell: the observed value, and how far past the limit when broken. */
export function constraintText(c: TrialConstraint | undefined): { text: string; broken: boolean } {
  if (!c || c.value === null || c.value === undefined) return { text: "—", broken: false };
  const broken = typeof c.violation === "number" && c.violation > 0;
  return { text: broken ? `${fmt(c.value)} (over by ${fmt(c.violation)})` : fmt(c.value), broken };
}
