// Every differentiable op of leuko, by family. Include this to use them all.
#pragma once

#include "layers/elementwise.h"
#include "layers/matmul.h"
#include "layers/reduce.h"
#include "tensor/autograd.h"
#include "tensor/random.h"
#include "tensor/tensor.h"
