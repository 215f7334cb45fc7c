// Every differentiable op of leuko, by family. Include this to use them all.
#pragma once

#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/concat.h"
#include "layers/conv2d.h"
#include "layers/elementwise.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "layers/lrn.h"
#include "layers/matmul.h"
#include "layers/pool.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
