#pragma once
// Umbrella header, for convenience only: each area's headers stand alone and are the better
// include.

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/core/version.h>
#include <convirt/loss/infonce.h>
