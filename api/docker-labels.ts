// The container labels Docker mode reads and writes (docker-compose.yml sets the role on its node
// containers; the control plane marks the ones it adds; Compose labels every container with its
// project), shared by the control plane (dockerode), `kemu node exec`/`kemu status` (docker CLI)
// and the tests.

export const ROLE_LABEL = "io.kemu.role";
export const ADDED_LABEL = "io.kemu.added-by";
export const PROJECT_LABEL = "com.docker.compose.project";
