/* Vulkan physical devices as the loader sees them: which driver (RADV,
 * AMDVLK, NVIDIA, lavapipe...) would run llama.cpp's Vulkan build, on which
 * device, at which API version. libvulkan is dlopen'ed so that a machine
 * without a loader still runs lemon and reports the missing loader as a
 * fact. Only the types of <vulkan/vulkan.h> are used; nothing links against
 * libvulkan. Under a sysroot the probe is skipped: a recorded tree has no
 * drivers to ask. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include "detect/detect-private.h"
#include "util/str.h"

/* entry points resolved from the loader for one probe run */
struct vk_fns {
	PFN_vkGetInstanceProcAddr get_proc;
	PFN_vkDestroyInstance destroy;
	PFN_vkEnumeratePhysicalDevices enum_devices;
	PFN_vkGetPhysicalDeviceProperties props;
	PFN_vkGetPhysicalDeviceProperties2 props2; /* NULL on a 1.0 instance */
	PFN_vkEnumerateDeviceExtensionProperties enum_dev_ext;
};

static const char *driver_id_name(VkDriverId id)
{
	switch (id) {
	case VK_DRIVER_ID_AMD_PROPRIETARY:
		return "amd-proprietary";
	case VK_DRIVER_ID_AMD_OPEN_SOURCE:
		return "amdvlk";
	case VK_DRIVER_ID_MESA_RADV:
		return "radv";
	case VK_DRIVER_ID_NVIDIA_PROPRIETARY:
		return "nvidia";
	case VK_DRIVER_ID_INTEL_PROPRIETARY_WINDOWS:
		return "intel-proprietary";
	case VK_DRIVER_ID_INTEL_OPEN_SOURCE_MESA:
		return "intel-anv";
	case VK_DRIVER_ID_IMAGINATION_PROPRIETARY:
		return "imagination";
	case VK_DRIVER_ID_QUALCOMM_PROPRIETARY:
		return "qualcomm";
	case VK_DRIVER_ID_ARM_PROPRIETARY:
		return "arm";
	case VK_DRIVER_ID_GOOGLE_SWIFTSHADER:
		return "swiftshader";
	case VK_DRIVER_ID_GGP_PROPRIETARY:
		return "ggp";
	case VK_DRIVER_ID_BROADCOM_PROPRIETARY:
		return "broadcom";
	case VK_DRIVER_ID_MESA_LLVMPIPE:
		return "lavapipe";
	case VK_DRIVER_ID_MOLTENVK:
		return "moltenvk";
	case VK_DRIVER_ID_COREAVI_PROPRIETARY:
		return "coreavi";
	case VK_DRIVER_ID_JUICE_PROPRIETARY:
		return "juice";
	case VK_DRIVER_ID_VERISILICON_PROPRIETARY:
		return "verisilicon";
	case VK_DRIVER_ID_MESA_TURNIP:
		return "turnip";
	case VK_DRIVER_ID_MESA_V3DV:
		return "v3dv";
	case VK_DRIVER_ID_MESA_PANVK:
		return "panvk";
	case VK_DRIVER_ID_SAMSUNG_PROPRIETARY:
		return "samsung";
	case VK_DRIVER_ID_MESA_VENUS:
		return "venus";
	case VK_DRIVER_ID_MESA_DOZEN:
		return "dozen";
	case VK_DRIVER_ID_MESA_NVK:
		return "nvk";
	case VK_DRIVER_ID_IMAGINATION_OPEN_SOURCE_MESA:
		return "imagination-mesa";
	default:
		return NULL;
	}
}

static enum detect_vk_type device_type(VkPhysicalDeviceType t)
{
	switch (t) {
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
		return DETECT_VK_INTEGRATED;
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
		return DETECT_VK_DISCRETE;
	case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
		return DETECT_VK_VIRTUAL;
	case VK_PHYSICAL_DEVICE_TYPE_CPU:
		return DETECT_VK_CPU;
	default:
		return DETECT_VK_OTHER;
	}
}

static const char *vk_result_name(VkResult r)
{
	switch (r) {
	case VK_ERROR_OUT_OF_HOST_MEMORY:
		return "VK_ERROR_OUT_OF_HOST_MEMORY";
	case VK_ERROR_OUT_OF_DEVICE_MEMORY:
		return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
	case VK_ERROR_INITIALIZATION_FAILED:
		return "VK_ERROR_INITIALIZATION_FAILED";
	case VK_ERROR_LAYER_NOT_PRESENT:
		return "VK_ERROR_LAYER_NOT_PRESENT";
	case VK_ERROR_EXTENSION_NOT_PRESENT:
		return "VK_ERROR_EXTENSION_NOT_PRESENT";
	case VK_ERROR_INCOMPATIBLE_DRIVER:
		return "VK_ERROR_INCOMPATIBLE_DRIVER (no Vulkan driver installed)";
	default:
		return "unexpected VkResult";
	}
}

static bool has_ext(const struct vk_fns *fns, VkPhysicalDevice dev,
		    const char *name);

/* VkPhysicalDeviceDriverProperties may only be chained when the device
 * speaks Vulkan 1.2 or has VK_KHR_driver_properties */
static bool has_driver_props(const struct vk_fns *fns, VkPhysicalDevice dev,
			     uint32_t api)
{
	if (VK_API_VERSION_MAJOR(api) > 1 ||
	    (VK_API_VERSION_MAJOR(api) == 1 && VK_API_VERSION_MINOR(api) >= 2))
		return true;
	return has_ext(fns, dev, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
}

/* whether the device offers a device extension */
static bool has_ext(const struct vk_fns *fns, VkPhysicalDevice dev,
		    const char *name)
{
	VkExtensionProperties *ext;
	uint32_t n = 0, i;
	bool found = false;

	if (fns->enum_dev_ext == NULL ||
	    fns->enum_dev_ext(dev, NULL, &n, NULL) != VK_SUCCESS || n == 0 ||
	    n > 4096)
		return false;
	ext = calloc(n, sizeof(*ext));
	if (ext == NULL)
		return false;
	if (fns->enum_dev_ext(dev, NULL, &n, ext) >= VK_SUCCESS)
		for (i = 0; i < n && !found; i++)
			found = strcmp(ext[i].extensionName, name) == 0;
	free(ext);
	return found;
}

static void describe_device(const struct vk_fns *fns, VkPhysicalDevice dev,
			    struct detect_vk_device *out)
{
	VkPhysicalDeviceDriverProperties drv = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES,
	};
	VkPhysicalDevicePCIBusInfoPropertiesEXT bus = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT,
	};
	VkPhysicalDeviceProperties2 p2 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
	};
	const VkPhysicalDeviceProperties *p = &p2.properties;
	bool want_drv, want_bus;
	const char *name;

	memset(out, 0, sizeof(*out));
	fns->props(dev, &p2.properties);
	want_drv = fns->props2 != NULL &&
		   has_driver_props(fns, dev, p->apiVersion);
	want_bus = fns->props2 != NULL &&
		   has_ext(fns, dev, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);
	/* each structure is chained only where the device may fill it */
	if (want_drv)
		drv.pNext = want_bus ? (void *)&bus : NULL;
	p2.pNext = want_drv ? (void *)&drv : want_bus ? (void *)&bus : NULL;
	if (want_drv || want_bus)
		fns->props2(dev, &p2);
	if (want_drv) {
		name = driver_id_name(drv.driverID);
		/* a driver newer than our headers still names itself */
		lemon_str_copy(out->driver, sizeof(out->driver),
			       name != NULL ? name : drv.driverName);
		lemon_str_copy(out->driver_info, sizeof(out->driver_info),
			       drv.driverInfo);
	}
	if (want_bus)
		snprintf(out->pci_bdf, sizeof(out->pci_bdf),
			 "%04x:%02x:%02x.%x", bus.pciDomain & 0xffff,
			 bus.pciBus & 0xff, bus.pciDevice & 0x1f,
			 bus.pciFunction & 0x7);
	lemon_str_copy(out->name, sizeof(out->name), p->deviceName);
	out->vendor_id = p->vendorID;
	out->device_id = p->deviceID;
	out->type = device_type(p->deviceType);
	out->api_version = p->apiVersion;
}

static int list_devices(const struct vk_fns *fns, VkInstance inst,
			struct detect_vulkan *vk)
{
	VkPhysicalDevice devs[DETECT_MAX_VK];
	uint32_t n = DETECT_MAX_VK, i;
	VkResult r;

	/* VK_INCOMPLETE only means more than DETECT_MAX_VK devices: keep the
	 * first ones */
	r = fns->enum_devices(inst, &n, devs);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
		snprintf(vk->error, sizeof(vk->error),
			 "vkEnumeratePhysicalDevices failed: %s",
			 vk_result_name(r));
		return -1;
	}
	for (i = 0; i < n && i < DETECT_MAX_VK; i++)
		describe_device(fns, devs[i], &vk->devices[vk->n_devices++]);
	return 0;
}

static uint32_t instance_api(PFN_vkGetInstanceProcAddr get_proc)
{
	PFN_vkEnumerateInstanceVersion enum_version;
	uint32_t v = VK_API_VERSION_1_0;

	/* a 1.0 loader does not have vkEnumerateInstanceVersion */
	enum_version = (PFN_vkEnumerateInstanceVersion)get_proc(
		NULL, "vkEnumerateInstanceVersion");
	if (enum_version == NULL || enum_version(&v) != VK_SUCCESS)
		return VK_API_VERSION_1_0;
	return v >= VK_API_VERSION_1_1 ? VK_API_VERSION_1_1 : VK_API_VERSION_1_0;
}

#define LOAD(fns, inst, field, type, name) \
	((fns)->field = (type)(fns)->get_proc((inst), (name)))

static void run_instance(PFN_vkGetInstanceProcAddr get_proc,
			 struct detect_vulkan *vk)
{
	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "lemon",
		.pEngineName = "lemon",
	};
	VkInstanceCreateInfo info = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pApplicationInfo = &app,
	};
	struct vk_fns fns = { .get_proc = get_proc };
	PFN_vkCreateInstance create;
	VkInstance inst = VK_NULL_HANDLE;
	VkResult r;

	create = (PFN_vkCreateInstance)get_proc(NULL, "vkCreateInstance");
	if (create == NULL) {
		lemon_str_copy(vk->error, sizeof(vk->error),
			       "loader has no vkCreateInstance");
		return;
	}
	app.apiVersion = instance_api(get_proc);
	r = create(&info, NULL, &inst);
	if (r != VK_SUCCESS) {
		snprintf(vk->error, sizeof(vk->error),
			 "vkCreateInstance failed: %s", vk_result_name(r));
		return;
	}
	LOAD(&fns, inst, destroy, PFN_vkDestroyInstance, "vkDestroyInstance");
	LOAD(&fns, inst, enum_devices, PFN_vkEnumeratePhysicalDevices,
	     "vkEnumeratePhysicalDevices");
	LOAD(&fns, inst, props, PFN_vkGetPhysicalDeviceProperties,
	     "vkGetPhysicalDeviceProperties");
	LOAD(&fns, inst, enum_dev_ext, PFN_vkEnumerateDeviceExtensionProperties,
	     "vkEnumerateDeviceExtensionProperties");
	if (app.apiVersion >= VK_API_VERSION_1_1)
		LOAD(&fns, inst, props2, PFN_vkGetPhysicalDeviceProperties2,
		     "vkGetPhysicalDeviceProperties2");
	if (fns.enum_devices == NULL || fns.props == NULL)
		lemon_str_copy(vk->error, sizeof(vk->error),
			       "loader lacks vkEnumeratePhysicalDevices");
	else
		list_devices(&fns, inst, vk);
	if (fns.destroy != NULL)
		fns.destroy(inst, NULL);
}

int detect_vulkan_probe(struct detect_ctx *ctx, struct lemon_err *err)
{
	static const char *const sonames[] = { "libvulkan.so.1",
					       "libvulkan.so" };
	struct detect_vulkan *vk = &ctx->report->vulkan;
	PFN_vkGetInstanceProcAddr get_proc;
	void *lib = NULL;
	size_t i;

	(void)err;
	memset(vk, 0, sizeof(*vk));
	if (ctx->opts != NULL && !ctx->opts->vulkan) {
		lemon_str_copy(vk->skipped_why, sizeof(vk->skipped_why),
			       "--no-vulkan");
		return 0;
	}
	if (!detect_root_is_live(ctx->root)) {
		lemon_str_copy(vk->skipped_why, sizeof(vk->skipped_why),
			       "sysroot");
		return 0;
	}
	vk->probed = true;
	/* keep loader chatter off stdout (the JSON goes there); a user who
	 * set it for debugging keeps their value */
	setenv("VK_LOADER_DEBUG", "none", 0);
	for (i = 0; i < sizeof(sonames) / sizeof(sonames[0]) && !lib; i++)
		lib = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		snprintf(vk->error, sizeof(vk->error),
			 "Vulkan loader libvulkan.so.1 not found: %s", dlerror());
		return 0;
	}
	vk->loader = true;
	get_proc = (PFN_vkGetInstanceProcAddr)dlsym(lib, "vkGetInstanceProcAddr");
	if (get_proc == NULL)
		lemon_str_copy(vk->error, sizeof(vk->error),
			       "libvulkan has no vkGetInstanceProcAddr");
	else
		run_instance(get_proc, vk);
	dlclose(lib);
	return 0;
}
