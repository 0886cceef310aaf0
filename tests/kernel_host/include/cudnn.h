// Stand-in for <cudnn.h> in the host build of the kernels (tests/kernel_host
// only): the types ops_cuda.h names and what cuda_common.h's cudnnCheck calls.
// No convolution runs here (conv_cudnn.cu is not built); the CPU ops serve.
#pragma once
#include <stddef.h>

typedef enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_NOT_INITIALIZED = 1 } cudnnStatus_t;
typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
typedef int cudnnConvolutionFwdAlgo_t;
typedef int cudnnConvolutionBwdDataAlgo_t;
typedef int cudnnConvolutionBwdFilterAlgo_t;

static inline const char *cudnnGetErrorString(cudnnStatus_t s) {
    return s == CUDNN_STATUS_SUCCESS ? "CUDNN_STATUS_SUCCESS" : "CUDNN_STATUS_NOT_INITIALIZED";
}
static inline void cudnnGetLastErrorString(char *msg, size_t n) {
    if (n) msg[0] = 0;
}
