#!/usr/bin/env bash
# The upload stage: make sure the bucket exists (and, when the toolkit creates it, is
# encrypted, private and TLS-only), then sync the split to s3://$BUCKET/$DATA_PREFIX/.
# aws s3 sync sends only what changed; --delete removes stale files under the prefix,
# which SageMaker would otherwise feed to the job as channel data.
# Needs: BUCKET, DATA_PREFIX, AWS_REGION, SPLIT_DIR, CREATE_BUCKET (yes|no); LOCAL_EMULATOR=moto on the embedded stack
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

# GetBucketLocation, not HeadBucket: HeadBucket needs s3:ListBucket without a prefix, which
# the principal policy grants only for the toolkit's prefixes (iam/principal-policy.json).
bucket_state() { # prints: exists | missing | forbidden
  local err
  if err=$(aws s3api get-bucket-location --bucket "$BUCKET" 2>&1 >/dev/null); then
    echo exists
  elif grep -qE 'NoSuchBucket|404|Not Found' <<<"$err"; then
    echo missing
  elif grep -qE 'AccessDenied|403|Forbidden' <<<"$err"; then
    echo forbidden
  else
    die "cannot reach S3 for bucket $BUCKET ($(tail -n 1 <<<"$err")); $(endpoint_hint)"
  fi
}

create_bucket() {
  log "creating bucket s3://$BUCKET in $AWS_REGION"
  local args=(--bucket "$BUCKET")
  # us-east-1 is the one region that refuses an explicit LocationConstraint.
  [[ "$AWS_REGION" == us-east-1 ]] || args+=(--create-bucket-configuration "LocationConstraint=$AWS_REGION")
  aws s3api create-bucket "${args[@]}" >/dev/null
  aws s3api put-bucket-tagging --bucket "$BUCKET" \
    --tagging "TagSet=[{Key=$TOOLKIT_TAG_KEY,Value=$TOOLKIT_TAG_VALUE}]"
}

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
  local policy
  policy=$(printf '{"Version":"2012-10-17","Statement":[{"Sid":"DenyInsecureTransport","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::%s","arn:aws:s3:::%s/*"],"Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}' "$BUCKET" "$BUCKET")
  aws s3api put-bucket-policy --bucket "$BUCKET" --policy "$policy"
}

created_by_toolkit() {
  aws s3api get-bucket-tagging --bucket "$BUCKET" --query "TagSet[?Key=='$TOOLKIT_TAG_KEY'].Value" \
    --output text 2>/dev/null | grep -qx "$TOOLKIT_TAG_VALUE"
}

ensure_bucket() {
  local state
  state=$(bucket_state) # a die inside $(...) ends only the subshell: assigning lets set -e stop here
  case "$state" in
    exists) ;;
    missing)
      [[ "$CREATE_BUCKET" == yes ]] ||
        die "bucket s3://$BUCKET does not exist; create it, or set CREATE_BUCKET=yes to let the toolkit create it"
      create_bucket
      ;;
    forbidden)
      die "bucket s3://$BUCKET exists but you may not use it (403: another account's name, or no s3:ListBucket); choose another BUCKET"
      ;;
  esac
  # Only a bucket the toolkit made is the toolkit's to configure; someone else's keeps its settings.
  if created_by_toolkit; then
    harden_bucket
  else
    log "bucket s3://$BUCKET was not created by the toolkit; leaving its encryption and policy as they are"
  fi
}

main() {
  require_var BUCKET DATA_PREFIX AWS_REGION SPLIT_DIR CREATE_BUCKET
  require_cmd aws
  [[ -f "$SPLIT_DIR/manifest.json" ]] || die "$SPLIT_DIR/manifest.json is missing; run 'make data' first"
  ensure_bucket
  log "aws s3 sync $SPLIT_DIR/ s3://$BUCKET/$DATA_PREFIX/"
  aws s3 sync --delete --no-progress "$SPLIT_DIR/" "s3://$BUCKET/$DATA_PREFIX/" >&2
}

main "$@"
