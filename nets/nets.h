// The builders of each network (nets/<network>.cpp); make_net() in nets/registry.cpp picks one.
#pragma once

#include "nets/net.h"

namespace leuko::nets {

std::shared_ptr<Net> make_alexnet(const NetOptions& o, bool lrn);
std::shared_ptr<Net> make_vgg16(const NetOptions& o, bool batch_norm);
std::shared_ptr<Net> make_resnet18(const NetOptions& o);
std::shared_ptr<Net> make_resnet50(const NetOptions& o);
std::shared_ptr<Net> make_googlenet(const NetOptions& o);
std::shared_ptr<Net> make_inception_v3(const NetOptions& o);
// One GoogLeNet Inception block (four branches concatenated), for tests and study.
std::shared_ptr<Module> make_googlenet_inception(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3,
                                                 int64_t ch5x5red, int64_t ch5x5, int64_t pool_proj);

}  // namespace leuko::nets
