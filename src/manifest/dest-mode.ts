/**
 * How `dest_mode` was written, judged. YAML 1.1 (and Go stretcher's go-yaml v2) read `0711` as octal, but a
 * plain scalar that is not an octal literal silently becomes something else: `0758` (a typo for 0755) and
 * `0999` are decimal there, `1e3` a float, so the "mode" Go applies is 01366 or 01747, a dest every local
 * user can write into. Those are refused here. A plain decimal such as `711` stays what Go makes of it, for
 * manifests that rely on it, with a warning.
 */
export interface DestModeJudgement {
  problem?: string;
  warning?: string;
}

const octal = (mode: number): string => `0${mode.toString(8).padStart(3, '0')}`;

/** `source`: the plain scalar's text (undefined when quoted: text is read as octal, as chmod does); `mode`: what it was read as. */
export function judgeDestMode(source: string | undefined, mode: number | undefined): DestModeJudgement {
  const judgement: DestModeJudgement = {};
  if (mode === undefined) return judgement;
  const text = source?.trim();
  if (text !== undefined && !/^0o?[0-7]*$/i.test(text)) {
    if (/^0\d+$/.test(text)) {
      judgement.problem = `dest_mode ${text} is not an octal number (8 and 9 are not octal digits); Go stretcher would apply it as decimal ${mode}, mode ${octal(mode)}`;
      return judgement;
    }
    if (!/^[1-9]\d*$/.test(text)) {
      judgement.problem = `dest_mode ${text} is not a mode: write it in octal, such as 0755`;
      return judgement;
    }
    const hint = /^[0-7]+$/.test(text) ? `; write 0${text} for octal` : '';
    judgement.warning = `dest_mode ${text} is read as a decimal number (octal ${octal(mode)}), as Go stretcher does${hint}`;
  }
  if (mode & 0o002 && !judgement.warning) judgement.warning = `dest_mode ${octal(mode)} lets every local user write into dest`;
  else if (mode & 0o002) judgement.warning += `, which lets every local user write into dest`;
  return judgement;
}
