#!/usr/bin/env bash
# The one-time set-up an administrator runs (on the embedded stack, the pipeline runs it):
# the bucket (created when CREATE_BUCKET=yes, tagged, encrypted, private, TLS-only) and the
# ECR repository (scan on push, immutable tags, tagged, a lifecycle policy for untagged
# images). Safe to rerun: each step converges, and a creation that was interrupted before
# its tag was written is finished on the next run (a journal file under $DEPLOYED says which
# resource this toolkit was creating). A bucket or repository without the toolkit's tag that
# the toolkit was not creating is someone else's: it is used as it is and never reconfigured.
# Needs: BUCKET, AWS_REGION, CREATE_BUCKET, ECR_REPOSITORY, DEPLOYED; LOCAL_EMULATOR=moto on the embedded stack
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

readonly LIFECYCLE_POLICY='{"rules":[{"rulePriority":1,"description":"expire untagged images after 7 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}'

# ---- the bucket -------------------------------------------------------------------------
harden_bucket() {
  aws s3api put-public-access-block --bucket "$BUCKET" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  aws s3api put-bucket-encryption --bucket "$BUCKET" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
  # moto evaluates bucket policies without their conditions, so on the embedded stack this
  # TLS-only Deny would deny every request, HTTPS included: skip it there (README, "Gaps").
  if [[ "${LOCAL_EMULATOR:-}" == moto ]]; then
    log "embedded stack: not applying the TLS-only bucket policy (moto ignores its condition)"
    return 0
  fi
  local policy partition
  partition=$(partition_of_region "$AWS_REGION")
  policy=$(printf '{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:%s:s3:::%s","arn:%s:s3:::%s/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}' \
    "$partition" "$BUCKET" "$partition" "$BUCKET")
  aws s3api put-bucket-policy --bucket "$BUCKET" --policy "$policy"
}

bucket_tagged_ours() {
  local value
  # A bucket with no tags at all answers NoSuchTagSet: that is "not tagged", not a failure.
  if ! value=$(aws s3api get-bucket-tagging --bucket "$BUCKET" --query "TagSet[?Key=='$TOOLKIT_TAG_KEY'].Value" --output text 2>&1); then
    grep -q NoSuchTagSet <<<"$value" && return 1
    die "cannot read the tags of s3://$BUCKET ($(tail -n 1 <<<"$value")); an administrator's credentials are needed for 'make bootstrap'"
  fi
  [[ "$value" == "$TOOLKIT_TAG_VALUE" ]]
}

ensure_bucket() {
  local state journal="$DEPLOYED/creating-bucket-$BUCKET"
  state=$(bucket_state) # a die inside $(...) ends only the subshell: assigning lets set -e stop here
  case "$state" in
    missing)
      [[ "$CREATE_BUCKET" == yes ]] ||
        die "bucket s3://$BUCKET does not exist; create it, or set CREATE_BUCKET=yes to let the toolkit create it"
      mkdir -p "$DEPLOYED" && : >"$journal"
      log "creating bucket s3://$BUCKET in $AWS_REGION"
      local args=(--bucket "$BUCKET")
      # us-east-1 is the one region that refuses an explicit LocationConstraint.
      [[ "$AWS_REGION" == us-east-1 ]] || args+=(--create-bucket-configuration "LocationConstraint=$AWS_REGION")
      aws s3api create-bucket "${args[@]}" >/dev/null
      ;;
    forbidden)
      die "bucket s3://$BUCKET exists but you may not use it (403: another account's name, or no access); choose another BUCKET"
      ;;
  esac
  if bucket_tagged_ours; then
    harden_bucket
  elif [[ -f "$journal" ]]; then
    log "finishing the creation of s3://$BUCKET: tagging and hardening it"
    aws s3api put-bucket-tagging --bucket "$BUCKET" --tagging "TagSet=[{Key=$TOOLKIT_TAG_KEY,Value=$TOOLKIT_TAG_VALUE}]"
    harden_bucket
  else
    log "bucket s3://$BUCKET exists without the toolkit's tag: not ours, so its encryption and policy are left as they are"
  fi
  rm -f "$journal"
}

# ---- the repository ---------------------------------------------------------------------
repository_arn() {
  aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" --query 'repositories[0].repositoryArn' --output text
}

repository_tagged_ours() {
  local value
  value=$(aws ecr list-tags-for-resource --resource-arn "$1" --query "tags[?Key=='$TOOLKIT_TAG_KEY'].Value" --output text) ||
    die "cannot read the tags of ECR repository $ECR_REPOSITORY; an administrator's credentials are needed for 'make bootstrap'"
  [[ "$value" == "$TOOLKIT_TAG_VALUE" ]]
}

ensure_repository() {
  local err arn journal="$DEPLOYED/creating-repository-$ECR_REPOSITORY"
  if ! err=$(aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" 2>&1 >/dev/null); then
    grep -q RepositoryNotFoundException <<<"$err" ||
      die "cannot query ECR repository $ECR_REPOSITORY ($(tail -n 1 <<<"$err")); $(endpoint_hint)"
    mkdir -p "$DEPLOYED" && : >"$journal"
    log "creating ECR repository $ECR_REPOSITORY"
    aws ecr create-repository --repository-name "$ECR_REPOSITORY" \
      --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE \
      --tags "Key=$TOOLKIT_TAG_KEY,Value=$TOOLKIT_TAG_VALUE" >/dev/null
  fi
  arn=$(repository_arn)
  if ! repository_tagged_ours "$arn"; then
    if [[ ! -f "$journal" ]]; then
      log "ECR repository $ECR_REPOSITORY exists without the toolkit's tag: not ours, so its lifecycle policy is left as it is"
      return 0
    fi
    aws ecr tag-resource --resource-arn "$arn" --tags "Key=$TOOLKIT_TAG_KEY,Value=$TOOLKIT_TAG_VALUE"
  fi
  aws ecr put-lifecycle-policy --repository-name "$ECR_REPOSITORY" --lifecycle-policy-text "$LIFECYCLE_POLICY" >/dev/null
  rm -f "$journal"
}

main() {
  require_var BUCKET AWS_REGION CREATE_BUCKET ECR_REPOSITORY DEPLOYED
  require_cmd aws
  ensure_bucket
  ensure_repository
  log "set-up done: s3://$BUCKET and ECR repository $ECR_REPOSITORY are ready"
}

main "$@"
