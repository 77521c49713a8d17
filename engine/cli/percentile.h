#pragma once
// The one percentile definition of dlm's reports (`dlm bench` and `dlm compare`), so their figures for the
// same runs agree.
#include <vector>

namespace dlm::cli {

// Linear interpolation between the closest ranks (numpy's default), so the 0.5 percentile is the median;
// `values` must not be empty and `fraction` lies in [0, 1].
double percentile(std::vector<double> values, double fraction);

}  // namespace dlm::cli
