#!/usr/bin/env bash
# Lists, and with CONFIRM=yes deletes, what the toolkit made in the cloud: the images and
# the repository $ECR_REPOSITORY, the objects under its three S3 prefixes, and its training
# jobs still in progress. Nothing else: another repository, prefix, job or bucket is never
# touched, and the bucket itself goes only if the toolkit created it and DELETE_BUCKET=yes.
# A second run finds nothing and says so.
# Needs: BUCKET, DATA_PREFIX, OUTPUT_PREFIX, CHECKPOINT_PREFIX, ECR_REPOSITORY, BASE_JOB_NAME
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

FOUND=0

act() { # act DESCRIPTION CMD...: say it; do it only when confirmed
  FOUND=$((FOUND + 1))
  if [[ "$CONFIRM" == yes ]]; then
    log "deleting $1"
    "${@:2}"
  else
    log "would delete $1"
  fi
}

clean_ecr() {
  aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" >/dev/null 2>&1 || return 0
  local ids
  ids=$(aws ecr list-images --repository-name "$ECR_REPOSITORY" --query 'imageIds[].[imageDigest,imageTag]' --output text)
  local digest tag
  while read -r digest tag; do
    [[ -n "$digest" ]] || continue
    act "ECR image $ECR_REPOSITORY@$digest ($tag)" \
      aws ecr batch-delete-image --repository-name "$ECR_REPOSITORY" --image-ids "imageDigest=$digest" --output text
  done <<<"$ids"
  act "ECR repository $ECR_REPOSITORY" aws ecr delete-repository --repository-name "$ECR_REPOSITORY" --force --output text
}

clean_prefix() { # the trailing slash keeps titanic/data from matching titanic/data-other
  local prefix="$1/" keys key
  keys=$(aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$prefix" --query 'Contents[].Key' --output text 2>/dev/null) || return 0
  [[ "$keys" == None || -z "$keys" ]] && return 0
  local count
  count=$(wc -w <<<"$keys")
  for key in $keys; do log "  s3://$BUCKET/$key"; done
  act "$count object(s) under s3://$BUCKET/$prefix" aws s3 rm --recursive --only-show-errors "s3://$BUCKET/$prefix"
}

clean_jobs() {
  local names name
  # StopTrainingJob is the only way to end a running job; the emulator does not implement it.
  names=$(aws sagemaker list-training-jobs --name-contains "$BASE_JOB_NAME" --status-equals InProgress \
    --query 'TrainingJobSummaries[].TrainingJobName' --output text 2>/dev/null) || return 0
  for name in $names; do
    [[ "$name" == "$BASE_JOB_NAME"-* ]] || continue
    act "in-progress training job $name (stop)" aws sagemaker stop-training-job --training-job-name "$name"
  done
}

clean_bucket() {
  aws s3api get-bucket-location --bucket "$BUCKET" >/dev/null 2>&1 || return 0
  local created_by err
  created_by=$(aws s3api get-bucket-tagging --bucket "$BUCKET" --query "TagSet[?Key=='$TOOLKIT_TAG_KEY'].Value" --output text 2>/dev/null || true)
  if [[ "$DELETE_BUCKET" != yes ]]; then
    return 0
  elif [[ "$created_by" != "$TOOLKIT_TAG_VALUE" ]]; then
    log "keeping bucket s3://$BUCKET: the toolkit did not create it"
    return 0
  fi
  FOUND=$((FOUND + 1))
  if [[ "$CONFIRM" != yes ]]; then
    log "would delete bucket s3://$BUCKET (created by the toolkit, DELETE_BUCKET=yes) if it is then empty"
    return 0
  fi
  # S3 refuses to delete a bucket that holds anything: someone else's objects keep it alive.
  if err=$(aws s3api delete-bucket --bucket "$BUCKET" 2>&1); then
    log "deleted bucket s3://$BUCKET"
  elif grep -q BucketNotEmpty <<<"$err"; then
    log "keeping bucket s3://$BUCKET: it still holds objects outside the toolkit's prefixes"
  else
    die "could not delete bucket s3://$BUCKET: $(tail -n 1 <<<"$err")"
  fi
}

main() {
  require_var BUCKET DATA_PREFIX OUTPUT_PREFIX CHECKPOINT_PREFIX ECR_REPOSITORY BASE_JOB_NAME
  require_cmd aws
  CONFIRM=${CONFIRM:-no}
  DELETE_BUCKET=${DELETE_BUCKET:-no}
  [[ "$CONFIRM" == yes ]] || log "dry run: nothing is deleted (rerun with CONFIRM=yes to delete)"
  clean_jobs
  clean_ecr
  local prefix
  for prefix in "$DATA_PREFIX" "$OUTPUT_PREFIX" "$CHECKPOINT_PREFIX"; do
    clean_prefix "$prefix"
  done
  clean_bucket
  if ((FOUND == 0)); then
    log "nothing to delete: no toolkit resources found"
  elif [[ "$CONFIRM" != yes ]]; then
    log "$FOUND item(s) listed; rerun with CONFIRM=yes to delete them"
  fi
}

main "$@"
