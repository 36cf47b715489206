// A tiny program built against the *installed* convirt, as a user's would be.
#include <convirt/convirt.h>

#include <cmath>
#include <iostream>

int main() {
  torch::manual_seed(0);
  auto v = torch::randn({8, 16}, torch::requires_grad());
  auto u = torch::randn({8, 16}, torch::requires_grad());
  auto loss = convirt::infonce_loss(v, u, convirt::InfoNCEOptions().temperature(0.1));
  loss.backward();
  if (!std::isfinite(loss.item<double>()) || !v.grad().defined()) return 1;
  std::cout << "convirt " << convirt::version() << " loss " << loss.item<double>() << "\n";
  std::cout << "convirt consumer ok\n";
  return 0;
}
