// https://github.com/opencontainers/image-spec/blob/main/media-types.md
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
// https://distribution.github.io/distribution/spec/manifest-v2-2/
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([OCI_INDEX, DOCKER_MANIFEST_LIST])
export const IMAGE_MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([OCI_MANIFEST, DOCKER_MANIFEST])

/** Sent as Accept on every manifest request so no registry converts what it returns. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ')

export function isManifestMediaType(mediaType: string): boolean {
  return INDEX_MEDIA_TYPES.has(mediaType) || IMAGE_MANIFEST_MEDIA_TYPES.has(mediaType)
}

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name'
