/**
 * One proposal: the machines the loop offers a job (alive, accepting placements, meeting what its
 * spec requires), a PrivateCell over the snapshot, and the policy's claims on it. What an attempt
 * commits and what a plan reports come from this one function, so they cannot disagree on
 * filters or fit.
 */
import { PrivateCell, type CellSnapshot, type ClaimId, type Job } from '@omega/cell-state';
import { mergeRuledOut, offeredForJob, type FilterCount, type OfferedMachines } from './job-status.js';
import type { PlaceOutcome, PlacementPolicy, TaskToPlace } from './policy.js';
import type { Random } from './random.js';

export interface ProposalInput {
  readonly job: Job;
  readonly tasks: readonly TaskToPlace[];
  readonly snapshot: CellSnapshot;
  /** The machines the loop offers any job (see offeredMachines). */
  readonly offered: OfferedMachines;
  readonly policy: PlacementPolicy;
  readonly random: Random;
  /** The scheduler instance the claims are made by. */
  readonly scheduler: string;
  readonly claimIds: () => ClaimId;
  /**
   * Claim on this cell (made on `snapshot`, maybe holding other jobs' claims already: several
   * jobs placed for one commit) instead of a fresh one. Its claims so far count against each machine's fit.
   */
  readonly cell?: PrivateCell;
}

export interface Proposal {
  /** The claims (`cell.deltas`, with those it held before when `input.cell` was given), ready to commit. */
  readonly cell: PrivateCell;
  readonly outcome: PlaceOutcome;
  /** The machines offered to this job's policy, and those withheld from it and why. */
  readonly offered: OfferedMachines;
  /** Withheld machines, then the policy's filters: what a status says about unplaced tasks. */
  readonly ruledOut: FilterCount[];
}

/** Places `tasks` on a private cell of `snapshot`. Throws only if the policy throws. */
export function proposePlacement(input: ProposalInput): Proposal {
  const offered = offeredForJob(input.offered, input.job.spec);
  const cell = input.cell ?? new PrivateCell(input.snapshot, input.scheduler, input.claimIds);
  const outcome = input.policy.place({ job: input.job, tasks: input.tasks, cell, snapshot: input.snapshot, machines: offered.machines, random: input.random });
  return { cell, outcome, offered, ruledOut: mergeRuledOut(offered.withheld, outcome.ruledOut) };
}
