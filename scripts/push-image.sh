#!/usr/bin/env bash
# The push stage: make sure the ECR repository exists (scan on push, immutable tags, a
# lifecycle policy for untagged images), log in, tag the built image with the git commit,
# push it with retries, and record the image URI and digest in $IMAGE_RECORD.
# Needs: IMAGE_NAME, ECR_REPOSITORY, AWS_REGION, IMAGE_RECORD; optional ECR_REGISTRY_OVERRIDE
# (the embedded stack's registry, 127.0.0.1:PORT) and LOCAL_EMULATOR=moto.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

readonly LIFECYCLE_POLICY='{"rules":[{"rulePriority":1,"description":"expire untagged images after 7 days","selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}'
readonly PUSH_TRIES=4

ensure_repository() {
  local err
  if ! err=$(aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" 2>&1 >/dev/null); then
    grep -q RepositoryNotFoundException <<<"$err" ||
      die "cannot query ECR repository $ECR_REPOSITORY ($(tail -n 1 <<<"$err")); $(endpoint_hint)"
    log "creating ECR repository $ECR_REPOSITORY"
    aws ecr create-repository --repository-name "$ECR_REPOSITORY" \
      --image-scanning-configuration scanOnPush=true --image-tag-mutability IMMUTABLE \
      --tags "Key=$TOOLKIT_TAG_KEY,Value=$TOOLKIT_TAG_VALUE" >/dev/null
  fi
  aws ecr put-lifecycle-policy --repository-name "$ECR_REPOSITORY" --lifecycle-policy-text "$LIFECYCLE_POLICY" >/dev/null
}

registry_host() {
  if [[ -n "${ECR_REGISTRY_OVERRIDE:-}" ]]; then
    printf '%s\n' "$ECR_REGISTRY_OVERRIDE"
    return
  fi
  local uri
  uri=$(aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" --query 'repositories[0].repositoryUri' --output text)
  printf '%s\n' "${uri%%/*}"
}

login() {
  # get-login-password exists in awscli v1 (>= 1.17.10) and v2; the old get-login does not in v2.
  aws ecr get-login-password --region "$AWS_REGION" |
    docker login --username AWS --password-stdin "$REGISTRY" >/dev/null 2>&1 ||
    die "docker login to $REGISTRY failed; check your credentials (aws sts get-caller-identity) and ecr:GetAuthorizationToken"
}

# The commit names the source; a changed tree gets a marker and the image's own id, so two
# different dirty builds never fight over one immutable tag.
image_tag() {
  local commit image_id
  image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE_NAME")
  image_id=${image_id#sha256:}
  if ! commit=$(git rev-parse --short=12 HEAD 2>/dev/null); then
    printf 'nogit-%s\n' "${image_id:0:12}"
  elif [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then
    printf '%s-dirty-%s\n' "$commit" "${image_id:0:12}"
  else
    printf '%s\n' "$commit"
  fi
}

remote_digest() { # the digest ECR holds for a tag, empty if none
  aws ecr describe-images --repository-name "$ECR_REPOSITORY" --image-ids "imageTag=$1" \
    --query 'imageDetails[0].imageDigest' --output text 2>/dev/null | grep '^sha256:' || true
}

push_with_retries() {
  local uri=$1 delay=2 n output
  for ((n = 1; n <= PUSH_TRIES; n++)); do
    if output=$(docker push "$uri" 2>&1); then
      grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$output" | head -n 1 | cut -d' ' -f2
      return 0
    fi
    log "push attempt $n/$PUSH_TRIES failed: $(tail -n 1 <<<"$output")"
    # ECR tokens last 12 hours: a long run (or a cron job's reused login) sees them expire.
    if grep -qiE 'token has expired|no basic auth credentials|authorization|denied|401' <<<"$output"; then
      log "logging in to $REGISTRY again"
      login
    fi
    ((n < PUSH_TRIES)) && sleep "$delay"
    delay=$((delay * 2))
  done
  die "docker push $uri failed $PUSH_TRIES times: $(tail -n 1 <<<"$output"); check the network and ECR permissions (ecr:InitiateLayerUpload, ecr:PutImage)"
}

# moto has no layer-upload API, so the embedded registry holds the image and moto's ECR gets
# its manifest, keeping describe-images and clean-up the same as on AWS (README, "Gaps").
register_with_emulator() {
  local tag=$1 digest=$2 manifest
  manifest=$(mktemp)
  curl -fsS -o "$manifest" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$ECR_REPOSITORY/manifests/$tag" || die "could not read the manifest of $tag back from $REGISTRY"
  aws ecr put-image --repository-name "$ECR_REPOSITORY" --image-tag "$tag" --image-digest "$digest" \
    --image-manifest "file://$manifest" >/dev/null 2>&1 || true
  rm -f "$manifest"
}

write_record() {
  local uri=$1 digest=$2 tag=$3 partial="$IMAGE_RECORD.partial"
  mkdir -p "$(dirname "$IMAGE_RECORD")"
  printf '{\n  "image_uri": "%s",\n  "digest": "%s",\n  "tag": "%s",\n  "repository": "%s",\n  "registry": "%s",\n  "pushed_at": "%s"\n}\n' \
    "$uri" "$digest" "$tag" "$ECR_REPOSITORY" "$REGISTRY" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$partial"
  mv "$partial" "$IMAGE_RECORD"
}

main() {
  require_var IMAGE_NAME ECR_REPOSITORY AWS_REGION IMAGE_RECORD
  require_cmd aws git
  require_docker
  docker image inspect "$IMAGE_NAME" >/dev/null 2>&1 || die "image $IMAGE_NAME is not built; run 'make build' first"
  ensure_repository
  REGISTRY=$(registry_host)
  local tag uri digest existing
  tag=$(image_tag)
  uri="$REGISTRY/$ECR_REPOSITORY:$tag"
  existing=$(remote_digest "$tag")
  docker tag "$IMAGE_NAME" "$uri"
  login
  if [[ -n "$existing" && "$tag" != *-dirty-* && "$tag" != nogit-* ]]; then
    # Same commit, already in ECR: immutable tags forbid replacing it, and its source is ours.
    log "$uri is already in ECR ($existing), built from the same commit; using it"
    digest=$existing
  else
    log "docker push $uri"
    digest=$(push_with_retries "$uri")
    [[ -n "$digest" ]] || digest=$(docker image inspect --format '{{join .RepoDigests "\n"}}' "$uri" | grep -F "$REGISTRY/$ECR_REPOSITORY@" | head -n 1 | cut -d@ -f2)
  fi
  [[ "${LOCAL_EMULATOR:-}" == moto ]] && register_with_emulator "$tag" "$digest"
  write_record "$uri" "$digest" "$tag"
  log "pushed $uri ($digest)"
}

main "$@"
