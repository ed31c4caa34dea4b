/*
 * DSC_API marks what libdiscovery exports. The library is built with
 * -fvisibility=hidden, so its dynamic symbol table holds the functions
 * declared with DSC_API (the dsc_* API) and nothing else: not the internal
 * dsi_* code, the generated protobuf code, nor the libraries it links.
 */
#ifndef DISCOVERY_EXPORT_H
#define DISCOVERY_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define DSC_API __attribute__((visibility("default")))
#else
#define DSC_API
#endif

#endif /* DISCOVERY_EXPORT_H */
