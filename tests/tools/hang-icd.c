/* A Vulkan ICD (driver) that never answers, for tests of what lemon does
 * when a GPU driver hangs in its probe: the loader's first call into the
 * driver sleeps for an hour. Built by the integration test as a shared
 * library and named to the Vulkan loader through VK_DRIVER_FILES (and
 * VK_ICD_FILENAMES for older loaders). */
#include <unistd.h>

__attribute__((visibility("default"))) int
vk_icdNegotiateLoaderICDInterfaceVersion(unsigned *version)
{
	(void)version;
	sleep(3600);
	return -3; /* VK_ERROR_INITIALIZATION_FAILED, never reached in a test */
}

__attribute__((visibility("default"))) void *
vk_icdGetInstanceProcAddr(void *instance, const char *name)
{
	(void)instance;
	(void)name;
	sleep(3600);
	return 0;
}
