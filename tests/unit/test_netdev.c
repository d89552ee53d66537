/* test_netdev.c - matching a GPU's PCI path to NICs' (src/core/transport.c):
 * whole path components only, never a prefix of a component. */
#include <stdio.h>

#include "core/core.h"

static int failures;

static void expect(const char *a, const char *b, int want)
{
    int got = pci_path_shared(a, b), back = pci_path_shared(b, a);
    if (got != want || back != want) {
        printf("FAIL: pci_path_shared(\"%s\", \"%s\") = %d / %d reversed, expected %d\n", a, b, got, back, want);
        failures++;
    }
}

int main(void)
{
    const char *gpu = "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:04:00.0";
    /* NIC behind the same switch as the GPU, behind the same root port,
     * and on another root complex */
    expect(gpu, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:01.0/0000:06:00.0", 5);
    expect(gpu, "/sys/devices/pci0000:00/0000:00:02.0/0000:08:00.0", 3);
    expect(gpu, "/sys/devices/pci0000:80/0000:80:01.0/0000:81:00.0", 2);
    expect(gpu, gpu, 7);
    expect("/a/bc", "/a/b", 1);        /* "b" is not "bc" */
    expect("/a/b", "/a/b/c", 2);
    expect("/a/b/", "/a/b", 2);
    expect("", "/a", 0);
    expect("relative/x", "relative/y", 1);
    if (failures) return 1;
    printf("pci_path_shared: 9 cases OK\n");
    return 0;
}
